//! Timestamps in JSON answers, written without the formatting machinery.
//!
//! chrono serializes a `DateTime<Utc>` through `Display` (`collect_str`):
//! a formatter call per field and digit group. An item list of 100 items has
//! 200 timestamps, so this writes the same text — RFC 3339, `Z`, and the
//! fraction as chrono's `SecondsFormat::AutoSi` picks it (none, 3, 6 or 9
//! digits) — into a stack buffer. Years outside 0–9999 and leap seconds,
//! which chrono writes in its own way, are left to chrono.

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use serde::Serializer;

/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ`: the longest text written here.
const MAX_LEN: usize = 30;

/// `#[serde(serialize_with = "crate::json_time::rfc3339")]`: the same text as
/// chrono's own `Serialize`, faster.
///
/// # Errors
/// Only the serializer's.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0_u8; MAX_LEN];
    match write(at, &mut buffer) {
        Some(len) => serializer.serialize_str(std::str::from_utf8(&buffer[..len]).unwrap_or_default()),
        None => serde::Serialize::serialize(at, serializer),
    }
}

fn digits(buffer: &mut [u8], mut value: u32) {
    for slot in buffer.iter_mut().rev() {
        *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
    }
}

/// Writes `at`; `None` where chrono's own text differs from the common form.
fn write(at: &DateTime<Utc>, out: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
    let nano = at.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    digits(&mut out[0..4], year);
    out[4] = b'-';
    digits(&mut out[5..7], at.month());
    out[7] = b'-';
    digits(&mut out[8..10], at.day());
    out[10] = b'T';
    digits(&mut out[11..13], at.hour());
    out[13] = b':';
    digits(&mut out[14..16], at.minute());
    out[16] = b':';
    digits(&mut out[17..19], at.second());
    let mut len = 19;
    let (fraction, width) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (nano / 1_000_000, 3)
    } else if nano.is_multiple_of(1_000) {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if width > 0 {
        out[len] = b'.';
        digits(&mut out[len + 1..=len + width], fraction);
        len += width + 1;
    }
    out[len] = b'Z';
    Some(len + 1)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Fast(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    fn same_as_chrono(at: DateTime<Utc>) {
        assert_eq!(
            serde_json::to_string(&Fast(at)).unwrap(),
            serde_json::to_string(&at).unwrap(),
            "{at:?}"
        );
    }

    #[test]
    fn the_text_is_chronos_for_every_precision_and_the_edges() {
        let base = Utc.with_ymd_and_hms(2026, 11, 30, 14, 59, 21).unwrap();
        for nanos in [
            0,
            1,
            9,
            10,
            999,
            1_000,
            1_001,
            120_000,
            934_190_000,
            934_190_001,
            1_000_000,
            5_000_000,
            999_000_000,
            999_999_000,
            999_999_999,
        ] {
            same_as_chrono(base + chrono::Duration::nanoseconds(nanos));
        }
        for at in [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        ] {
            same_as_chrono(at);
        }
        // A leap second (chrono's nanosecond ≥ 10⁹) is chrono's to write.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        same_as_chrono(leap);
    }

    #[test]
    fn a_spread_of_instants_reads_the_same() {
        // A deterministic walk over ~300 years with varied sub-second parts.
        let mut at = Utc.with_ymd_and_hms(1850, 3, 1, 0, 0, 0).unwrap();
        let mut step: i64 = 7_919;
        for _ in 0..5_000 {
            same_as_chrono(at);
            step = (step * 48_271) % 2_147_483_647;
            at += chrono::Duration::seconds(step % 2_000_000) + chrono::Duration::nanoseconds(step % 1_000_000_000);
        }
    }
}
