"""The Python binding against a real repository on loopback: install,
update through a delta with progress, roll back, and typed errors."""

import hashlib
import pathlib
import threading

import pytest

import deltapack

from conftest import EXAMPLE


def tree_digest(root: pathlib.Path) -> str:
    """A digest of every file's path and bytes under `root`."""
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def updater(url, key, app, **kw):
    return deltapack.Updater(
        repository=url, public_key=key, platform="linux", install_dir=str(app), **kw
    )


def test_install_update_through_a_delta_with_progress_then_roll_back(repo, tmp_path):
    url, key, _ = repo
    app = tmp_path / "app"
    u = updater(url, key, app)
    assert u.install_version("1.0.0") == ["full 1.0.0"]
    assert u.status()["current"] == "1.0.0"
    assert tree_digest(app / "current") == tree_digest(EXAMPLE / "v1")

    offer = u.check()
    assert offer is not None
    assert (offer.from_version, offer.version) == ("1.0.0", "1.1.0")
    assert offer.steps == ["delta 1.0.0->1.1.0"]
    assert 0 < offer.download_bytes < offer.full_bytes

    events = []
    threads = set()
    assert u.update(progress=lambda e: (events.append(e), threads.add(threading.get_ident()))) == "1.1.0"
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "checking"
    assert "downloading" in kinds and "applying" in kinds
    assert kinds[-1] == "installed" and events[-1]["version"] == "1.1.0"
    dl = [e for e in events if e["kind"] == "downloading"]
    assert dl[-1]["done"] == dl[-1]["total"] == offer.download_bytes
    assert tree_digest(app / "current") == tree_digest(EXAMPLE / "v2")
    last = [e for e in u.history() if e["action"] != "prune"][-1]
    assert last["path"] == ["delta 1.0.0->1.1.0"]

    st = u.status()
    assert st["current"] == "1.1.0"
    assert st["on_probation"]["version"] == "1.1.0"
    assert u.launched() == {"kind": "on_probation", "launches": 1}

    assert u.rollback() == "1.0.0"
    assert u.status()["current"] == "1.0.0"
    assert tree_digest(app / "current") == tree_digest(EXAMPLE / "v1")
    assert u.check() is None, "1.1.0 is refused after the rollback"
    assert u.status()["refused"][0]["version"] == "1.1.0"


def test_step_by_step_and_local_calls(repo, tmp_path):
    url, key, _ = repo
    app = tmp_path / "app"
    u = updater(url, key, app)
    u.install_version("1.0.0")
    offer = u.check()
    d = u.download(offer)
    s = u.apply(d)
    assert s.steps == ["delta 1.0.0->1.1.0"] and s.fallback is None
    u.install(s)
    u.mark_healthy()
    # Without a repository, the local calls an app makes at start work.
    local = deltapack.Updater(install_dir=str(app))
    assert local.status()["current"] == "1.1.0"
    assert local.launched() == {"kind": "healthy"}
    assert [e["to"] for e in local.history() if e["action"] != "prune"] == ["1.0.0", "1.1.0"]


def test_errors_are_typed_with_a_stable_code(repo, tmp_path):
    url, key, repo_dir = repo
    app = tmp_path / "app"
    with pytest.raises(deltapack.ConfigError):
        deltapack.Updater(repository=url, public_key="not a key", platform="linux", install_dir=str(app))
    with pytest.raises(deltapack.ConfigError):
        deltapack.Updater(repository=url, public_key=key, platform="linux")
    u = updater(url, key, app)
    with pytest.raises(deltapack.UnavailableError) as e:
        u.rollback()
    assert e.value.code == "nothing_installed"
    with pytest.raises(deltapack.UnavailableError) as e:
        u.install_version("9.9.9")
    assert e.value.code == "not_available"
    # Another publisher's key: the manifest is refused.
    other = tmp_path / "other"
    from conftest import run
    run("keygen", "-o", str(other))
    bad = updater(url, other.with_suffix(".pub").read_text(), tmp_path / "app2")
    with pytest.raises(deltapack.SignatureError) as e:
        bad.check()
    assert e.value.code == "manifest"
    assert isinstance(e.value, deltapack.Error)
    # Nothing listens there any more.
    gone = updater("http://127.0.0.1:9/", key, tmp_path / "app3")
    with pytest.raises(deltapack.NetworkError) as e:
        gone.check()
    assert e.value.code == "network"


def test_a_progress_callback_that_raises_is_reraised_after_the_call(repo, tmp_path):
    url, key, _ = repo
    u = updater(url, key, tmp_path / "app")

    def boom(event):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        u.install_version("1.0.0", progress=boom)
    # The install itself ran to its end.
    assert u.status()["current"] == "1.0.0"


def test_long_calls_release_the_gil(repo, tmp_path):
    """While install calls run in another thread, the main thread's Python
    code keeps running inside them: with the GIL held it could not."""
    import time

    url, key, _ = repo
    u = updater(url, key, tmp_path / "app")
    done = threading.Event()
    calls = []
    ticks = []

    def work():
        try:
            for v in ["1.0.0", "1.1.0"] * 4:
                start = time.monotonic()
                u.install_version(v)
                calls.append((start, time.monotonic()))
        finally:
            done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.0005)
    t.join()
    assert u.status()["current"] == "1.1.0"
    # The middle half of each call: with the GIL held, the main thread
    # could only run at a call's edges (just before the Rust code takes
    # over, or right after it returns).
    middle = [(a + (b - a) / 4, b - (b - a) / 4) for a, b in calls]
    inside = sum(1 for x in ticks if any(a < x < b for a, b in middle))
    assert inside >= 3, (inside, len(ticks), calls)
