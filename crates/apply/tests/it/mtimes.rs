//! Modification times (FORMAT.md §3, header flag bit 2): a package made
//! with them gives every rebuilt file its time, base files carried over
//! included; a table that does not fit the target is refused before
//! anything is written.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deltapack_apply::{Applier, Error};
use deltapack_diff::Differ;
use deltapack_format::Mtimes;

use crate::craft::*;
use crate::harness::*;

fn set_mtime(p: &std::path::Path, t: u64) {
    fs_err::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(t))
        .unwrap();
}

fn mtime(p: &std::path::Path) -> u64 {
    fs_err::metadata(p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn rebuilt_files_get_the_build_times_through_full_and_delta_packages() {
    let s = Scratch::new();
    s.write("old/keep.py", "kept = 1\n");
    s.write("old/lib/change.py", "v = 1\n");
    s.write("new/keep.py", "kept = 1\n");
    s.write("new/lib/change.py", "v = 2\n");
    s.write("new/lib/added.py", "new = True\n");
    set_mtime(&s.path("new/keep.py"), 1_700_000_000);
    set_mtime(&s.path("new/lib/change.py"), 1_700_000_100);
    set_mtime(&s.path("new/lib/added.py"), 1_700_000_100);
    // The old tree's times are not the new one's: the base copy must not
    // keep them.
    set_mtime(&s.path("old/keep.py"), 1_600_000_000);
    let differ = Differ::new().level(1).mtimes(true);
    let full = differ.diff(None, &s.path("new"), &|_| {}).unwrap();
    let m = full.header.mtimes.clone().unwrap();
    assert_eq!(m.times, [1_700_000_000, 1_700_000_100]);
    let delta = differ
        .diff(Some(&s.path("old")), &s.path("new"), &|_| {})
        .unwrap();
    for (name, pkg, base) in [
        ("full", full.to_bytes(), None),
        ("delta", delta.to_bytes(), Some(s.path("old"))),
    ] {
        let out = s.path(name);
        Applier::new()
            .apply(base.as_deref(), &pkg[..], &out, &|_| {})
            .unwrap();
        assert_eq!(mtime(&out.join("keep.py")), 1_700_000_000, "{name}");
        assert_eq!(mtime(&out.join("lib/change.py")), 1_700_000_100, "{name}");
        assert_eq!(mtime(&out.join("lib/added.py")), 1_700_000_100, "{name}");
    }
    // Clamped as reproducible builds do: nothing later than the epoch.
    let clamped = Differ::new()
        .level(1)
        .mtimes(true)
        .clamp_mtime(Some(1_700_000_050))
        .diff(None, &s.path("new"), &|_| {})
        .unwrap();
    assert_eq!(
        clamped.header.mtimes.unwrap().times,
        [1_700_000_000, 1_700_000_050]
    );
    // Without the option, no times are recorded and files get the clock's.
    let plain = Differ::new()
        .level(1)
        .diff(None, &s.path("new"), &|_| {})
        .unwrap();
    assert!(plain.header.mtimes.is_none());
    let out = s.path("plain");
    Applier::new()
        .apply(None, &plain.to_bytes()[..], &out, &|_| {})
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(mtime(&out.join("keep.py")) + 600 > now);
}

#[test]
fn a_time_table_that_does_not_fit_the_target_is_refused_before_writing() {
    let s = Scratch::new();
    let (mut h, payload) = full_header(vec![("a", literal(b"x"))], b"x");
    h.target = deltapack_format::TreeId {
        files: 1,
        bytes: 1,
        ..h.target
    };
    h.mtimes = Some(Mtimes {
        times: vec![5],
        index: vec![0, 0],
    });
    let out = s.path("out");
    let err = Applier::new()
        .apply(None, &seal(&h, &payload)[..], &out, &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { what } if what.contains("modification times for 2 files")),
        "{err:?}"
    );
    assert!(!out.exists());
}
