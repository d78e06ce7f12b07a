"""A real repository made by `deltapack release` from the sample app's two
versions, served on loopback by `deltapack serve`."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "testdata" / "example"


def cli() -> str:
    """The deltapack CLI: $DELTAPACK_BIN, else target/debug/deltapack (built
    if missing)."""
    given = os.environ.get("DELTAPACK_BIN")
    if given:
        return given
    path = ROOT / "target" / "debug" / "deltapack"
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "deltapack-cli"], cwd=ROOT, check=True
        )
    return str(path)


def run(*args: str) -> str:
    out = subprocess.run([cli(), *args], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture()
def repo(tmp_path):
    """(url, public key text, path) of a served repository holding 1.0.0 and
    1.1.0 on channel stable for platform linux."""
    key = tmp_path / "k"
    run("keygen", "-o", str(key))
    repo = tmp_path / "repo"
    for n, version in [(1, "1.0.0"), (2, "1.1.0")]:
        run(
            "release", "--level", "3", "--repo", str(repo), "--version", version,
            "--channel", "stable", "--key", str(key.with_suffix(".key")),
            f"--platform=linux={EXAMPLE / f'v{n}'}",
            *(["--init"] if n == 1 else []),
        )
    server = subprocess.Popen(
        [cli(), "serve", str(repo), "--addr", "127.0.0.1:0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip().rsplit(" ", 1)[-1]
        yield url, key.with_suffix(".pub").read_text(), repo
    finally:
        server.kill()
        server.wait()
