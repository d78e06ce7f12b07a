//! [`Expected`]: what a caller knows a package must be (from a signed
//! manifest), checked against the header before the applier writes a byte.

use deltapack_format::Header;
use deltapack_tree::hex;

use crate::error::{Error, HeaderField};

/// Header fields a package must have; `None` checks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The platform name.
    pub platform: Option<String>,
    /// The base version (`Some("")` for a full package).
    pub from_version: Option<String>,
    /// The target version.
    pub to_version: Option<String>,
    /// The target tree digest.
    pub target: Option<[u8; 32]>,
}

impl Expected {
    /// The first field of `h` that differs, as [`Error::Unexpected`].
    pub(crate) fn check(&self, h: &Header) -> Result<(), Error> {
        let fields = [
            (HeaderField::Platform, self.platform.clone(), &h.platform),
            (
                HeaderField::FromVersion,
                self.from_version.clone(),
                &h.from_version,
            ),
            (
                HeaderField::ToVersion,
                self.to_version.clone(),
                &h.to_version,
            ),
        ];
        for (field, want, got) in fields {
            if let Some(want) = want
                && &want != got
            {
                return Err(Error::Unexpected {
                    field,
                    expected: want,
                    found: got.clone(),
                });
            }
        }
        if let Some(t) = self.target
            && t != h.target.digest
        {
            return Err(Error::Unexpected {
                field: HeaderField::Target,
                expected: hex(&t),
                found: hex(&h.target.digest),
            });
        }
        Ok(())
    }
}
