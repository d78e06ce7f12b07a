//! The local-file readers as the fuzz target sees them: the seed corpus
//! (real files written by an updater) and crash reproducers replay here;
//! garbage never panics.

use std::path::{Path, PathBuf};

use deltapack_client::fuzzing::local_state;
use proptest::prelude::*;

use crate::fixture::*;

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/{sub}/local_state"))
}

#[test]
#[ignore = "writes fuzz/corpus/local_state from a real install; run by hand"]
fn write_fuzz_seeds() {
    let r = repo(5);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("app");
    install(&r, &root, "1.0.0");
    let u = r.updater(&root).build().unwrap();
    u.update(false, &|_| {}).unwrap();
    u.launched().unwrap();
    let meta = root.join(".deltapack");
    let out = fuzz_dir("corpus");
    fs_err::create_dir_all(&out).unwrap();
    fs_err::copy(meta.join("state.json"), out.join("state.json")).unwrap();
    fs_err::copy(meta.join("history.jsonl"), out.join("history.jsonl")).unwrap();
    let journal = serde_json::json!({"entry": {"time": 1, "action": "update", "from": "1.0.0",
        "to": "1.2.0", "path": ["delta 1.0.0->1.2.0"], "bytes": 5, "result": "ok"}});
    fs_err::write(out.join("journal.json"), journal.to_string()).unwrap();
    let mut c = deltapack_client::Config::default();
    c.set("repository", "https://updates.example.com/app/")
        .unwrap();
    c.set("public_keys", &key().public().to_text()).unwrap();
    c.set("allow_hosts", "updates.example.com").unwrap();
    c.save(&out.join("update.toml")).unwrap();
}

#[test]
fn replay_corpus_and_regressions() {
    for sub in ["corpus", "regressions"] {
        let dir = fuzz_dir(sub);
        let rd = fs_err::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}: the committed fuzz inputs are missing"));
        for e in rd {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_file() && !name.starts_with('.') {
                local_state(&fs_err::read(&p).unwrap());
            }
        }
    }
    // Each seed is a real file of its kind and must parse as that.
    let seed = |name: &str| local_state(&fs_err::read(fuzz_dir("corpus").join(name)).unwrap());
    assert!(seed("state.json").state, "state.json");
    assert!(seed("update.toml").config, "update.toml");
    assert!(seed("history.jsonl").history >= 2, "history.jsonl");
    assert!(seed("journal.json").journal, "journal.json");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        local_state(&bytes);
    }

    #[test]
    fn mutated_seeds_never_panic(i in 0usize..4, pos in any::<usize>(), byte in any::<u8>()) {
        let seeds = ["state.json", "history.jsonl", "journal.json", "update.toml"];
        if let Ok(mut b) = fs_err::read(fuzz_dir("corpus").join(seeds[i]))
            && !b.is_empty()
        {
            let at = pos % b.len();
            b[at] = byte;
            local_state(&b);
        }
    }
}
