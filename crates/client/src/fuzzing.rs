//! Entry points for the fuzz targets in `fuzz/` (and for replaying their
//! findings as ordinary tests): the readers of the install's local files,
//! which a crash, a disk error or a user can leave in any state.

use crate::Config;
use crate::history::parse as parse_history;
use crate::recover::parse_journal;
use crate::state::State;

/// Which readers accepted an input of [`local_state`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsed {
    /// As a state file.
    pub state: bool,
    /// As a config file.
    pub config: bool,
    /// History entries read.
    pub history: usize,
    /// As a journal.
    pub journal: bool,
}

/// Parses arbitrary bytes as each local file (state, config, history,
/// journal). None may panic; whatever parses must serialise and parse back
/// to the same value. Returns which readers accepted it (a replayed seed
/// must parse as what it is).
pub fn local_state(data: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    if let Ok(st) = State::parse(data) {
        out.state = true;
        let again = serde_json::to_vec(&st).map(|b| State::parse(&b));
        assert!(
            matches!(again, Ok(Ok(ref s)) if *s == st),
            "state round trip"
        );
    }
    if let Ok(c) = Config::parse(data) {
        out.config = true;
        let again = toml::to_string(&c).map(|t| Config::parse(t.as_bytes()));
        assert!(
            matches!(again, Ok(Ok(ref d)) if *d == c),
            "config round trip"
        );
    }
    for e in parse_history(data) {
        out.history += 1;
        let again = serde_json::to_vec(&e).map(|b| parse_history(&b));
        assert!(
            matches!(again, Ok(ref v) if v.as_slice() == [e.clone()]),
            "history round trip"
        );
    }
    if let Ok(j) = parse_journal(data) {
        out.journal = true;
        let again = serde_json::to_vec(&j).map(|b| parse_journal(&b).ok());
        assert!(
            matches!(again, Ok(Some(ref k)) if *k == j),
            "journal round trip"
        );
    }
    out
}
