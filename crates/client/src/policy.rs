//! The failure policy: what a failed update says about the release, and so
//! what the updater does next. One place decides it:
//!
//! - a failure of this machine ([`Error::is_local`]: a full disk, a planted
//!   link, unreadable state) stops the update; nothing is counted;
//! - any other failure of a delta — its HTTP status, size or hash, a header
//!   that is not the release's, a base that does not match, an apply error
//!   — is followed by the full bundle, and the reason is recorded
//!   ([`crate::Staged::fallback`], the history's `note`). The update fails
//!   only when the full bundle fails too;
//! - a failure of the full bundle in transport (network, status, size,
//!   hash: a bad mirror or CDN node) says nothing about the release: the
//!   update fails, and the next attempt starts afresh;
//! - only evidence against the release itself counts: a full bundle whose
//!   bytes verified against the signed manifest and that still cannot be
//!   installed ([`against_release`]). After [`MAX_BROKEN`] such attempts
//!   the version is refused ([`RefusalReason::Broken`]) — no update loop;
//! - a rollback (asked for, or after a failed probation) refuses the
//!   version it left.
//!
//! A refused version is not offered again until `deltapack update allow
//! VERSION` ([`crate::Updater::allow`]), an explicit install of it, or a
//! newer version; `status` and `doctor` list each with its reason.

use deltapack_manifest::Version;

use crate::Error;
use crate::state::{MAX_BROKEN, Refusal, RefusalReason, State};

/// A failed attempt, and whether the package that failed had been checked
/// against the manifest's size and BLAKE3 first.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: Error,
    pub(crate) verified: bool,
}

impl From<deltapack_fs::Error> for Failed {
    fn from(e: deltapack_fs::Error) -> Self {
        Failed::from(Error::from(e))
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            verified: false,
        }
    }
}

/// Whether a delta's failure sends the update to the full bundle.
pub(crate) fn falls_back(e: &Error) -> bool {
    !e.is_local()
}

/// Whether a failure of the full bundle is evidence against the release:
/// its bytes were the signed ones, and it does not apply or is not the
/// release's package.
pub(crate) fn against_release(f: &Failed) -> bool {
    f.verified
        && match &f.error {
            Error::WrongPackage { .. } => true,
            Error::Apply { source, .. } => release_fault(source),
            _ => false,
        }
}

/// The client's error for an applier failure of `package`: a local I/O
/// error is this machine's; a header that is not the manifest's is
/// `WrongPackage`; the rest is `Apply`.
pub(crate) fn apply_error(package: &str, source: deltapack_apply::Error) -> Error {
    match source {
        deltapack_apply::Error::Io(e) => Error::from(e),
        deltapack_apply::Error::Unexpected {
            field,
            expected,
            found,
        } => Error::WrongPackage {
            package: package.to_owned(),
            field,
            expected,
            found,
        },
        source => Error::Apply {
            package: package.to_owned(),
            source,
        },
    }
}

/// Whether an applier error of a verified full bundle is the package's
/// doing: not this client's limits, its age (an unsupported format) or
/// its disk (an output left there, links the file system lacks).
fn release_fault(e: &deltapack_apply::Error) -> bool {
    use deltapack_apply::Error as A;
    use deltapack_format::DecodeError as D;
    !matches!(
        e,
        A::Io(_)
            | A::OutputExists { .. }
            | A::SymlinkUnsupported { .. }
            | A::PendingLimit { .. }
            | A::ReferenceTooLarge { .. }
            | A::BaseTree(_)
            | A::Decode(
                D::UnsupportedVersion { .. }
                    | D::UnsupportedFlags { .. }
                    | D::LengthExceedsLimit { .. }
            )
    )
}

/// Counts one attempt at a broken release; refuses it at the limit.
/// Returns whether it is refused now.
pub(crate) fn count_broken(st: &mut State, v: &Version, detail: String, now: u64) -> bool {
    let n = st.broken.entry(v.clone()).or_insert(0);
    *n += 1;
    if *n >= MAX_BROKEN {
        st.refused.insert(
            v.clone(),
            Refusal {
                reason: RefusalReason::Broken,
                time: now,
                detail: Some(detail),
            },
        );
        return true;
    }
    false
}

/// Refuses `v`: a rollback left it.
pub(crate) fn refuse(st: &mut State, v: &Version, reason: RefusalReason, now: u64) {
    st.refused.insert(
        v.clone(),
        Refusal {
            reason,
            time: now,
            detail: None,
        },
    );
}

/// An installed version is wanted again: its refusal and count go.
pub(crate) fn forgive(st: &mut State, v: &Version) {
    st.refused.remove(v);
    st.broken.remove(v);
}
