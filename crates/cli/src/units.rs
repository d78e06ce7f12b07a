//! Sizes and times as a person reads them: `11.3 kB`, `2027-01-15
//! 08:00:00`, `2027-01-15T08:00:00Z (in 29 days)`. JSON output keeps exact
//! bytes and Unix seconds; only what is printed for people goes through
//! here.

use std::fmt;

/// A byte count in decimal units (`bytesize`, as the client's messages).
pub(crate) struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().si())
    }
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss` in UTC (for tables).
pub(crate) struct Utc(pub u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match timestamp(self.0) {
            Some(t) => write!(f, "{}", t.strftime("%Y-%m-%d %H:%M:%S")),
            None => write!(f, "(time {} out of range)", self.0),
        }
    }
}

/// A moment as RFC 3339 and how far it is from now:
/// `2027-01-15T08:00:00Z (in 29 days)`, `... (3 hours ago)`.
pub(crate) struct When(pub u64);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(t) = timestamp(self.0) else {
            return write!(f, "(time {} out of range)", self.0);
        };
        let now = deltapack_manifest::unix_now();
        write!(f, "{t} ({})", relative(self.0, now))
    }
}

fn timestamp(secs: u64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

/// `in 29 days`, `3 hours ago`, `now`: the largest whole unit.
fn relative(t: u64, now: u64) -> String {
    let (d, future) = if t >= now {
        (t - now, true)
    } else {
        (now - t, false)
    };
    let (n, unit) = match d {
        0..60 => return "now".into(),
        60..7_200 => (d / 60, "minute"),
        7_200..172_800 => (d / 3_600, "hour"),
        _ => (d / 86_400, "day"),
    };
    let s = if n == 1 { "" } else { "s" };
    if future {
        format!("in {n} {unit}{s}")
    } else {
        format!("{n} {unit}{s} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_sizes_and_distances() {
        assert_eq!(Utc(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(Utc(951_782_400).to_string(), "2000-02-29 00:00:00");
        assert_eq!(Utc(1_800_000_000).to_string(), "2027-01-15 08:00:00");
        assert_eq!(Utc(4_102_444_799).to_string(), "2099-12-31 23:59:59");
        assert_eq!(
            Utc(u64::MAX).to_string(),
            format!("(time {} out of range)", u64::MAX)
        );
        assert_eq!(Bytes(999).to_string(), "999 B");
        assert_eq!(Bytes(11_312).to_string(), "11.3 kB");
        assert_eq!(Bytes(2_800_000).to_string(), "2.8 MB");
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(100 + 29 * 86_400 + 5, 100), "in 29 days");
        assert_eq!(relative(100, 100 + 3 * 3_600), "3 hours ago");
        assert_eq!(relative(100 + 61, 100), "in 1 minute");
    }
}
