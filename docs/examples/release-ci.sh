#!/usr/bin/env bash
# The steps of github-actions-release.yml, one command per job, so that
# the workflow stays a thin wrapper and the steps can be run (and tested)
# anywhere. The remote repository is $BUCKET: s3://bucket/prefix (any
# S3-compatible store; credentials, region and AWS_ENDPOINT_URL from the
# usual AWS_* variables or ~/.aws files), gs://, az://, or a local
# directory (file://, for tests and self-hosting). `deltapack repo pull`
# and `deltapack publish` speak all of them, the same way.
#
#   release-ci.sh package I/N   pull, then build shard I of N into out/
#   release-ci.sh publish       pull, merge shards/*, verify, push
#   release-ci.sh refresh       re-sign the manifest with a new expiry
#
# Environment: BUCKET; VERSION (package); DELTAPACK_RELEASE_KEY (publish,
# refresh: the text of release.key); INIT=1 for the very first release,
# which starts the repository; PLATFORMS: "name=path ..." (package).
# release.pub and CHANGELOG-latest.md are read from the working directory.
set -euo pipefail

die() { echo "release-ci: $*" >&2; exit 1; }
: "${BUCKET:?set BUCKET to s3://bucket/prefix or a directory}"
init=()
[ "${INIT:-}" = 1 ] && init=(--init)

# The remote's manifest and full bundles (what a shard builds from); with
# `all`, every file (what `repo verify` checks). Each file is checked
# against the signed manifest on the way.
pull() {
  mkdir -p repo
  local only=()
  [ "$1" = all ] || only=(--bundles-only)
  local out
  if ! out=$(deltapack repo pull "$BUCKET" --repo repo --pub release.pub "${only[@]}" 2>&1); then
    case "$out" in
      *"has no manifest.json"*) ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  if [ ! -f repo/manifest.json ] && [ ${#init[@]} -eq 0 ]; then
    die "$BUCKET holds no manifest.json: if this is the very first release, run with INIT=1"
  fi
}

# Packages first, the manifest last, so a client never sees a manifest
# naming files that are not there yet; only what is missing is uploaded.
push() {
  deltapack publish repo --to "$BUCKET" --pub release.pub
}

key_file() {
  : "${DELTAPACK_RELEASE_KEY:?set DELTAPACK_RELEASE_KEY to the text of release.key}"
  local k="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/release-ci.$$.key"
  (umask 077 && printf '%s' "$DELTAPACK_RELEASE_KEY" > "$k")
  echo "$k"
}

case "${1:-}" in
  package)
    shard=${2:?package I/N}
    : "${VERSION:?set VERSION}"
    pull full
    args=()
    for p in ${PLATFORMS:?set PLATFORMS to \"name=path ...\"}; do args+=(--platform "$p"); done
    notes=()
    [ -f CHANGELOG-latest.md ] && notes=(--notes CHANGELOG-latest.md)
    deltapack release --repo repo --version "$VERSION" --channel stable "${init[@]}" \
      "${notes[@]}" --pub release.pub --shard "$shard" --out out "${args[@]}"
    ;;
  publish)
    pull all
    key=$(key_file)
    trap 'rm -f "$key"' EXIT
    deltapack repo merge --repo repo --key "$key" "${init[@]}" shards/*
    deltapack repo verify repo --pub release.pub
    push
    ;;
  refresh)
    pull full
    key=$(key_file)
    trap 'rm -f "$key"' EXIT
    deltapack repo refresh --repo repo --key "$key"
    push
    ;;
  *) die "usage: release-ci.sh package I/N | publish | refresh" ;;
esac
