//! The executable and bundle installs end to end, and a versions install
//! of an app that has run (Python wrote its `__pycache__`): each installs,
//! updates through a delta, falls back, rolls back, and identifies an
//! install it did not make.

use std::path::{Path, PathBuf};

use deltapack_client::{InstallKind, Updater};
use deltapack_hostile::{Fault, Hostile, Rule};
use deltapack_release::{NewRelease, Packager};

use crate::fixture::*;

/// A repository of `inputs` as versions 1.0.0, 1.1.0, 1.2.0 (deltas from
/// every earlier one), served by a hostile server.
fn served(work: &Path, inputs: &[PathBuf]) -> (PathBuf, Hostile) {
    let repo = work.join("repo");
    for (i, input) in inputs.iter().enumerate() {
        Packager::new(&repo)
            .init(i == 0)
            .keys(vec![key()])
            .now(NOW)
            .deltas(5)
            .release(
                &NewRelease {
                    version: v(&format!("1.{i}.0")),
                    channel: "stable".into(),
                    platforms: vec![(PLATFORM.into(), input.clone())],
                    notes: String::new(),
                    min_delta_version: None,
                    carry: Vec::new(),
                    rollout_percent: 100,
                },
                None,
                &|_| {},
            )
            .unwrap();
    }
    let server = Hostile::serve(&repo).unwrap();
    (repo, server)
}

fn builder(server: &Hostile) -> deltapack_client::UpdaterBuilder {
    Updater::builder()
        .repository(server.url())
        .public_key(key().public())
        .platform(PLATFORM)
        .retries(1, std::time::Duration::from_millis(5))
        .now(NOW + 10)
}

fn digest_of(p: &Path) -> String {
    deltapack_tree::hex(&deltapack_tree::Tree::scan(p).unwrap().id().digest)
}

/// Three builds of one executable: the sample app, then with code
/// inserted twice.
fn executables(work: &Path) -> Vec<PathBuf> {
    let base = fs_err::read(tree(work, 0).join("bin/sample-app")).unwrap();
    (0..3u32)
        .map(|i| {
            let mut code = base.clone();
            for k in 0..i {
                let at = code.len() / (2 + k as usize);
                code.splice(at..at, (0..4096u32).map(|b| (b * (7 + k)) as u8));
            }
            let p = work.join(format!("exe{i}/tool"));
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, code).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            p
        })
        .collect()
}

#[test]
fn an_executable_is_installed_updated_in_place_and_rolled_back() {
    let t = tempfile::tempdir().unwrap();
    let builds = executables(t.path());
    let (_repo, server) = served(t.path(), &builds);
    let exe = t.path().join("bin/tool");
    let state = t.path().join("state");
    let u = builder(&server)
        .executable(&exe)
        .state_dir(&state)
        .build()
        .unwrap();
    // First install: nothing there yet.
    let up = u.check_version(&v("1.0.0")).unwrap();
    assert!(up.path.is_full());
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(
        fs_err::read(&exe).unwrap(),
        fs_err::read(&builds[0]).unwrap()
    );
    // An update through a delta, renamed over the file.
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.2.0")));
    assert_eq!(
        fs_err::read(&exe).unwrap(),
        fs_err::read(&builds[2]).unwrap()
    );
    let h = u.history().unwrap();
    assert_eq!(h.last().unwrap().path, ["delta 1.0.0->1.2.0"]);
    let st = u.status().unwrap();
    assert_eq!(st.kind, InstallKind::Executable);
    assert_eq!(st.runs_from, exe);
    assert_eq!(st.current, Some(v("1.2.0")));
    assert_eq!(st.installed, [v("1.0.0"), v("1.2.0")]);
    assert_eq!(
        fs_err::read(state.join("kept/1.0.0")).unwrap(),
        fs_err::read(&builds[0]).unwrap(),
        "the previous version is kept"
    );
    // Nothing is left beside the executable.
    let beside: Vec<_> = fs_err::read_dir(exe.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["tool"]);
    // Rollback puts the kept file back.
    assert_eq!(u.rollback().unwrap(), v("1.0.0"));
    assert_eq!(
        fs_err::read(&exe).unwrap(),
        fs_err::read(&builds[0]).unwrap()
    );
    assert_eq!(u.status().unwrap().current, Some(v("1.0.0")));
    // 1.2.0 is refused now; 1.1.0 comes through a delta from the rolled-back file.
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.1.0")));
    assert_eq!(
        fs_err::read(&exe).unwrap(),
        fs_err::read(&builds[1]).unwrap()
    );
    assert_eq!(
        u.history().unwrap().last().unwrap().path,
        ["delta 1.0.0->1.1.0"]
    );
}

#[test]
fn an_executable_put_there_by_an_installer_is_identified_and_falls_back_when_modified() {
    let t = tempfile::tempdir().unwrap();
    let builds = executables(t.path());
    let (_repo, server) = served(t.path(), &builds);
    // The installer put 1.0.0 there; the updater has no state yet.
    let exe = t.path().join("bin/tool");
    fs_err::create_dir_all(exe.parent().unwrap()).unwrap();
    fs_err::copy(&builds[0], &exe).unwrap();
    let u = builder(&server)
        .executable(&exe)
        .state_dir(t.path().join("state"))
        .build()
        .unwrap();
    assert!(matches!(
        u.status(),
        Err(deltapack_client::Error::Unidentified { .. })
    ));
    let up = u.check().unwrap().unwrap();
    assert_eq!(up.from, Some(v("1.0.0")), "identified by its digest");
    assert!(!up.path.is_full());
    u.install(&u.download_and_apply(&up, &|_| {}).unwrap(), &|_| {})
        .unwrap();
    assert_eq!(digest_of(&exe), digest_of(&builds[2]));

    // A locally modified build that says it is 1.0.0: identified by the
    // version it gives, updated through the full bundle.
    let exe2 = t.path().join("bin2/tool");
    fs_err::create_dir_all(exe2.parent().unwrap()).unwrap();
    let mut bytes = fs_err::read(&builds[0]).unwrap();
    bytes[100] ^= 1;
    fs_err::write(&exe2, bytes).unwrap();
    let unknown = builder(&server)
        .executable(&exe2)
        .state_dir(t.path().join("state2"))
        .build()
        .unwrap();
    assert!(matches!(
        unknown.check(),
        Err(deltapack_client::Error::Unidentified { .. })
    ));
    let u2 = builder(&server)
        .executable(&exe2)
        .state_dir(t.path().join("state2"))
        .current_version(v("1.0.0"))
        .build()
        .unwrap();
    let up = u2.check().unwrap().unwrap();
    assert_eq!(up.from, Some(v("1.0.0")));
    let s = u2.download_and_apply(&up, &|_| {}).unwrap();
    assert!(
        s.fallback().unwrap().contains("does not match"),
        "{:?}",
        s.fallback()
    );
    u2.install(&s, &|_| {}).unwrap();
    assert_eq!(digest_of(&exe2), digest_of(&builds[2]));
}

/// The sample app's three trees.
fn trees(work: &Path) -> Vec<PathBuf> {
    (0..3).map(|i| tree(work, i)).collect()
}

#[test]
fn a_bundle_is_swapped_whole_and_rolled_back() {
    let t = tempfile::tempdir().unwrap();
    let inputs = trees(t.path());
    let (_repo, server) = served(t.path(), &inputs);
    let app = t.path().join("opt/app");
    let u = builder(&server)
        .bundle(&app)
        .state_dir(t.path().join("state"))
        .keep_versions(1)
        .build()
        .unwrap();
    let up = u.check_version(&v("1.0.0")).unwrap();
    u.install(&u.download_and_apply(&up, &|_| {}).unwrap(), &|_| {})
        .unwrap();
    assert_eq!(digest_of(&app), digest_of(&inputs[0]));
    // The app writes next to its code: not part of the release, and no
    // reason to take the full bundle.
    fs_err::write(app.join("share/app.log"), "started\n").unwrap();
    let up = u.check().unwrap().unwrap();
    // A corrupt delta (a bad CDN node) falls back to the full bundle.
    server.set(vec![Rule::always("from-1.0.0.dpk", Fault::Corrupt)]);
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    assert!(s.fallback().is_some());
    u.install(&s, &|_| {}).unwrap();
    server.honest();
    assert_eq!(digest_of(&app), digest_of(&inputs[2]));
    let side = t.path().join("opt/.app.deltapack");
    assert!(
        side.join("versions/1.0.0").is_dir(),
        "kept beside the bundle"
    );
    assert_eq!(u.status().unwrap().kind, InstallKind::Bundle);
    // Rollback swaps the kept tree back in, log and all.
    assert_eq!(u.rollback().unwrap(), v("1.0.0"));
    assert_eq!(
        fs_err::read_to_string(app.join("share/app.log")).unwrap(),
        "started\n"
    );
    assert!(side.join("versions/1.2.0").is_dir());
    // The next update (1.1.0, 1.2.0 is refused) goes through a delta from
    // the rolled-back tree, its log ignored, and the oldest kept tree goes.
    assert_eq!(u.update(false, &|_| {}).unwrap(), Some(v("1.1.0")));
    let h = u.history().unwrap();
    let switch = h.iter().rev().find(|e| e.action.is_switch()).unwrap();
    assert_eq!(switch.path, ["delta 1.0.0->1.1.0"]);
    // The pruned tree's log is named in the history before it went.
    let prune = h.last().unwrap();
    assert_eq!(prune.action.as_str(), "prune");
    assert_eq!(prune.from, Some(v("1.2.0")));
    assert_eq!(digest_of(&app), digest_of(&inputs[1]));
    let kept: Vec<_> = fs_err::read_dir(side.join("versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept, ["1.0.0"], "keep_versions(1)");
    // Nothing but kept versions beside the bundle.
    let left: Vec<_> = fs_err::read_dir(&side)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["versions"]);
}

#[test]
fn a_bundle_copied_in_by_an_installer_is_identified_and_updated_through_a_delta() {
    let t = tempfile::tempdir().unwrap();
    let inputs = trees(t.path());
    let (_repo, server) = served(t.path(), &inputs);
    let app = t.path().join("Applications/Foo.app");
    fs_err::create_dir_all(app.parent().unwrap()).unwrap();
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&inputs[1])
            .arg(&app)
            .status()
            .unwrap()
            .success()
    );
    let u = builder(&server)
        .bundle(&app)
        .state_dir(t.path().join("state"))
        .build()
        .unwrap();
    let up = u.check().unwrap().unwrap();
    assert_eq!(
        (up.from.clone(), up.version.clone()),
        (Some(v("1.1.0")), v("1.2.0"))
    );
    // It ran and wrote beside its code before the update.
    fs_err::create_dir_all(app.join("cache")).unwrap();
    fs_err::write(app.join("cache/x"), "x").unwrap();
    let s = u.download_and_apply(&up, &|_| {}).unwrap();
    assert!(s.fallback().is_none(), "{:?}", s.fallback());
    assert_eq!(s.steps(), ["delta 1.1.0->1.2.0"]);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(digest_of(&app), digest_of(&inputs[2]));
}

/// A Python app: two modules, then one changed.
fn python_app(work: &Path, i: usize) -> PathBuf {
    let d = work.join(format!("py{i}"));
    fs_err::create_dir_all(d.join("app")).unwrap();
    fs_err::write(d.join("app/__init__.py"), "").unwrap();
    fs_err::write(
        d.join("app/core.py"),
        format!(
            "VERSION = '1.{i}.0'\n\ndef greet(name):\n    return 'hello ' + name + ' from ' + VERSION\n{}",
            "# padding\n".repeat(200)
        ),
    )
    .unwrap();
    d
}

#[test]
fn python_writing_its_pycache_beside_the_code_does_not_force_the_full_bundle() {
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| std::process::Command::new(p).arg("-V").output().is_ok());
    let Some(python) = python else {
        panic!("these machines have CPython; no python3 found");
    };
    let t = tempfile::tempdir().unwrap();
    let inputs: Vec<PathBuf> = (0..3).map(|i| python_app(t.path(), i)).collect();
    let (_repo, server) = served(t.path(), &inputs);
    let root = t.path().join("install");
    let u = builder(&server).install_dir(&root).build().unwrap();
    let up = u.check_version(&v("1.0.0")).unwrap();
    u.install(&u.download_and_apply(&up, &|_| {}).unwrap(), &|_| {})
        .unwrap();
    // A real run of the installed app: Python writes __pycache__ there.
    let run = || {
        // As a user's shell has it: bytecode is written (this machine's
        // environment turns that off).
        let out = std::process::Command::new(python)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .args(["-c", "import app.core; print(app.core.greet('you'))"])
            .current_dir(root.join("current"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run().trim(), "hello you from 1.0.0");
    assert!(
        root.join("current/app/__pycache__").is_dir(),
        "Python wrote its bytecode"
    );
    let s = u
        .download_and_apply(&u.check().unwrap().unwrap(), &|_| {})
        .unwrap();
    assert!(s.fallback().is_none(), "{:?}", s.fallback());
    assert_eq!(s.steps(), ["delta 1.0.0->1.2.0"]);
    u.install(&s, &|_| {}).unwrap();
    assert_eq!(run().trim(), "hello you from 1.2.0");
    // The new version holds the release's files only (the bytecode of the
    // old one did not come along).
    assert_eq!(
        deltapack_tree::hex(
            &deltapack_tree::Tree::scan_only(
                &root.join("versions/1.2.0"),
                &["app", "app/__init__.py", "app/core.py"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
            .unwrap()
            .id()
            .digest
        ),
        digest_of(&inputs[2])
    );
    // A release file changed by hand is still refused as a base.
    run();
    fs_err::write(root.join("current/app/core.py"), "VERSION = 'hacked'\n").unwrap();
    let r = Packager::new(t.path().join("repo"))
        .keys(vec![key()])
        .now(NOW)
        .deltas(5);
    r.release(
        &NewRelease {
            version: v("1.3.0"),
            channel: "stable".into(),
            platforms: vec![(PLATFORM.into(), inputs[0].clone())],
            notes: String::new(),
            min_delta_version: None,
            carry: Vec::new(),
            rollout_percent: 100,
        },
        None,
        &|_| {},
    )
    .unwrap();
    let s = u
        .download_and_apply(&u.check().unwrap().unwrap(), &|_| {})
        .unwrap();
    assert!(
        s.fallback().unwrap().contains("core.py"),
        "{:?}",
        s.fallback()
    );
}
