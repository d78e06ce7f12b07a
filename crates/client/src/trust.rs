//! Trust in the repository: only a manifest signed by an embedded key, not
//! expired, and not older than the last one this install accepted is used.
//!
//! Expiry is checked against `max(clock, time floor)`; the clock reading
//! raises the floor whatever the outcome, and the manifest's `issued` time
//! raises it once the manifest is accepted (see [`crate::state`]).

use deltapack_manifest::{Manifest, Verifier};

use crate::{Error, Event, Updater};

/// Name of the manifest at the repository root.
pub(crate) const MANIFEST: &str = "manifest.json";
/// The last manifest accepted, in the state directory.
pub(crate) const ACCEPTED: &str = "manifest.json";

impl Updater {
    /// Fetches and verifies the manifest, refuses one older than the last
    /// accepted, and records the check.
    pub(crate) fn manifest(&self, progress: &dyn Fn(Event)) -> Result<Manifest, Error> {
        progress(Event::Checking);
        let bytes = self.fetch_manifest()?;
        let _lock = match self.lock() {
            Ok(l) => l,
            Err(Error::ReadOnly { .. }) => return self.manifest_read_only(&bytes),
            Err(e) => return Err(e),
        };
        let root = &self.store.root;
        let mut st = self.state()?;
        let clock = self.now();
        let now = st.trusted_now(clock);
        let rebound = st.bind(root)?;
        if clock > st.time_floor || rebound {
            st.time_floor = st.time_floor.max(clock);
            st.save(root)?;
        }
        let m = self.verify_manifest(&bytes, now)?;
        if m.sequence < st.last_sequence {
            return Err(Error::Rollback {
                have: st.last_sequence,
                offered: m.sequence,
            });
        }
        st.last_sequence = m.sequence;
        st.last_check = Some(clock);
        // Signed by a trusted key: its issue time is the publisher's word.
        st.time_floor = st.time_floor.max(m.issued);
        // Kept, so that what is downloaded now can be installed offline.
        root.write_atomic(ACCEPTED, &bytes)?;
        st.save(root)?;
        Ok(m)
    }

    /// The manifest checked by a user who cannot write the install: the
    /// same checks against what the state says, nothing recorded.
    fn manifest_read_only(&self, bytes: &[u8]) -> Result<Manifest, Error> {
        let st = self.state()?;
        let m = self.verify_manifest(bytes, st.trusted_now(self.now()))?;
        if m.sequence < st.last_sequence {
            return Err(Error::Rollback {
                have: st.last_sequence,
                offered: m.sequence,
            });
        }
        Ok(m)
    }

    /// The manifest this install accepted last, as kept at its check:
    /// re-verified under the embedded keys (its expiry was checked when it
    /// was accepted), and refused unless its sequence is the one recorded.
    pub(crate) fn accepted_manifest(&self) -> Result<Manifest, Error> {
        let url = self.store.root.join(ACCEPTED).display().to_string();
        let bytes = self
            .store
            .root
            .read(ACCEPTED, deltapack_manifest::MAX_MANIFEST_SIZE as u64)?
            .ok_or(Error::Config(
                "no manifest was kept from an earlier check: go online once",
            ))?;
        let m = Verifier::new(&self.keys)
            .ignore_expiry()
            .verify(&bytes)
            .map_err(|source| Error::Manifest {
                url: url.clone(),
                source,
            })?
            .into_manifest();
        let st = self.state()?;
        if m.sequence != st.last_sequence {
            return Err(Error::Rollback {
                have: st.last_sequence,
                offered: m.sequence,
            });
        }
        Ok(m)
    }

    /// The manifest, verified (expiry against the clock, or the persisted
    /// time floor if the clock is behind it), without touching the
    /// install's state.
    /// One older than the last accepted is refused, as a check would.
    pub(crate) fn verified_manifest(&self) -> Result<Manifest, Error> {
        let bytes = self.fetch_manifest()?;
        let (clock, floor) = self.clock_and_floor();
        let m = self.verify_manifest(&bytes, clock.max(floor))?;
        let have = self.state().map_or(0, |st| st.last_sequence);
        if m.sequence < have {
            return Err(Error::Rollback {
                have,
                offered: m.sequence,
            });
        }
        Ok(m)
    }

    /// The clock and the persisted time floor, read-only (floor 0 if the
    /// state is unreadable; doctor reports that on its own).
    pub(crate) fn clock_and_floor(&self) -> (u64, u64) {
        let floor = self.state().map_or(0, |st| st.time_floor);
        (self.now(), floor)
    }

    fn fetch_manifest(&self) -> Result<Vec<u8>, Error> {
        if self.local_only {
            return Err(Error::Config(
                "this updater was built for local calls only: set the repository, public key and platform",
            ));
        }
        self.transport
            .fetch(MANIFEST, deltapack_manifest::MAX_MANIFEST_SIZE as u64)
    }

    fn verify_manifest(&self, bytes: &[u8], now: u64) -> Result<Manifest, Error> {
        Ok(Verifier::new(&self.keys)
            .now(now)
            .verify(bytes)
            .map_err(|source| Error::Manifest {
                url: self.transport.describe(MANIFEST),
                source,
            })?
            .into_manifest())
    }
}
