//! Time: event time as milliseconds since the Unix epoch, the duration literals config and rule
//! files share (`30s`, `15m`, `1h30m`), RFC 3339 parsing (a hand-written fast path beside
//! chrono) and formatting, civil days (Howard Hinnant's algorithms), UTC offsets, and the serde
//! form of durations in config. Decisions never read the host's clock; only [`wall_ms`] does,
//! for live sources.

/// Milliseconds since the Unix epoch, UTC. Event time everywhere in the engine.
pub type Millis = i64;

pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Parses a duration such as `500ms`, `20s`, `15m`, `4h`, `30d`, `2w`, or a compound `1h30m`.
/// Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{s}` is not a duration (expected e.g. 30s, 15m, 4h, 30d)"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| format!("number too large in `{s}`"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let ms = unit_millis(unit)
            .ok_or_else(|| format!("unknown duration unit `{unit}` in `{s}` (use ms, s, m, h, d or w)"))?;
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{s}` is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Milliseconds per duration unit, for the units config and rules accept.
pub fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" | "sec" => SECOND,
        "m" | "min" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        _ => return None,
    })
}

/// Formats milliseconds back as the largest exact unit (`30d`, `90m`, `1500ms`).
pub fn format_duration(ms: i64) -> String {
    for (unit, size) in [("w", 7 * DAY), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND)] {
        if ms != 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A span of time for people reading a message, rounded to its two largest units
/// (`7975y 2d`, `31d 4h`, `12h`, `3m 20s`): how far ahead an event is, how long the engine stalled.
pub fn format_span(ms: i64) -> String {
    const YEAR: i64 = 365 * DAY;
    let mut rest = ms.unsigned_abs();
    let mut parts = Vec::with_capacity(2);
    for (unit, size) in [("y", YEAR), ("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND), ("ms", 1)] {
        let size = size as u64;
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            // Two adjacent units at most: `1d 3s` would read as more precise than it is.
            break;
        }
    }
    if parts.is_empty() {
        return "0s".into();
    }
    format!("{}{}", if ms < 0 { "-" } else { "" }, parts.join(" "))
}

/// The host's clock in milliseconds since the Unix epoch. Only live sources ask it (to refuse
/// events stamped in the future); decisions never depend on it.
pub fn wall_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Formats event time as RFC 3339 in the given offset, to the second or millisecond.
pub fn format_ts(ms: Millis, offset: chrono::FixedOffset) -> String {
    // Every decision written carries a time or two: by hand for years 1 to 9999 and whole-minute
    // offsets (chrono parses its format string on every call), chrono for anything else.
    let off = i64::from(offset.local_minus_utc());
    if off % 60 == 0 {
        if let Some(local) = ms.checked_add(off * 1000) {
            let (y, m, d) = civil_from_days(local.div_euclid(DAY));
            if (1..=9999).contains(&y) {
                let t = local.rem_euclid(DAY);
                let two = |s: &mut String, v: i64| {
                    s.push(char::from(b'0' + (v / 10 % 10) as u8));
                    s.push(char::from(b'0' + (v % 10) as u8));
                };
                let mut s = String::with_capacity(29);
                two(&mut s, y / 100);
                two(&mut s, y % 100);
                for (sep, v) in [('-', m), ('-', d), ('T', t / 3_600_000), (':', t / 60_000 % 60), (':', t / 1000 % 60)]
                {
                    s.push(sep);
                    two(&mut s, v);
                }
                if ms % 1000 != 0 {
                    let f = t % 1000;
                    s.push('.');
                    s.push(char::from(b'0' + (f / 100) as u8));
                    two(&mut s, f % 100);
                }
                s.push(if off < 0 { '-' } else { '+' });
                let a = off.abs() / 60;
                two(&mut s, a / 60);
                s.push(':');
                two(&mut s, a % 60);
                return s;
            }
        }
    }
    use chrono::TimeZone;
    match offset.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => {
            if ms % 1000 == 0 {
                t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
            }
        }
        _ => ms.to_string(),
    }
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01; Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses RFC 3339 (with an offset) into event-time milliseconds.
pub fn parse_ts(s: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time with offset: {e}"))
}

/// The decoder's fast path for event times: `YYYY-MM-DDTHH:MM:SS[.fff]` then `Z` or `±HH:MM`,
/// parsed by hand. `None` for anything else, which then goes to [`parse_ts`] (chrono).
#[inline]
pub fn parse_ts_fast(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            ms *= 10;
        }
    }
    let offset = match b.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = i64::from((*h1 as char).to_digit(10)? * 10 + (*h2 as char).to_digit(10)?);
            let om = i64::from((*m1 as char).to_digit(10)? * 10 + (*m2 as char).to_digit(10)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset) * 1000) + ms)
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The first time at or after `t` that is `minute` minutes into a local day.
pub fn next_local_minute(minute: u32, t: Millis, offset: chrono::FixedOffset) -> Millis {
    let off = i64::from(offset.local_minus_utc()) * 1000;
    let at = (t + off).div_euclid(DAY) * DAY - off + i64::from(minute) * MINUTE;
    if at < t { at + DAY } else { at }
}

/// A UTC offset written `+08:00` / `-05:30` (config, `--utc-offset`).
pub fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    chrono::FixedOffset::east_opt(sign * secs)
}

/// Serde for `std::time::Duration` fields written as duration literals (`"10s"`, `"500ms"`,
/// `"2m"`), the same literals as everywhere else in config and rule files.
pub mod duration_serde {
    use serde::Deserialize;
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let ms = super::parse_duration(&s).map_err(serde::de::Error::custom)?;
        if ms < 0 {
            return Err(serde::de::Error::custom(format!("duration `{s}` is negative")));
        }
        Ok(Duration::from_millis(ms as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * DAY);
        assert_eq!(parse_duration("1h30m").unwrap(), 90 * MINUTE);
        assert_eq!(format_duration(90 * MINUTE), "90m");
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn format_ts_by_hand_matches_chrono() {
        use chrono::TimeZone;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let offsets = [8 * 3600, 0, -5 * 3600 - 1800, 5 * 3600 + 2700, 14 * 3600, -12 * 3600, 3600 + 1];
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Whole seconds half the time; years 1 to 9999 and a little beyond either side.
            let span = 320_000_000_000_000i64;
            let mut ms = (x % (2 * span as u64)) as i64 - span + 1_000_000_000_000;
            if i % 2 == 0 {
                ms -= ms.rem_euclid(1000);
            }
            let off = chrono::FixedOffset::east_opt(offsets[(i % offsets.len() as u64) as usize]).expect("offset");
            let want = match off.timestamp_millis_opt(ms) {
                chrono::LocalResult::Single(t) if ms % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                chrono::LocalResult::Single(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
                _ => ms.to_string(),
            };
            assert_eq!(format_ts(ms, off), want, "{ms} at {off}");
        }
        let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
        assert_eq!(format_ts(0, cst), "1970-01-01T08:00:00+08:00");
        assert_eq!(format_ts(1_764_000_000_123, cst), "2025-11-25T00:00:00.123+08:00");
    }

    #[test]
    fn fast_time_parse_agrees_with_chrono() {
        for s in [
            "2026-11-24T08:00:00+08:00",
            "2026-11-24T08:00:00Z",
            "2026-02-28T23:59:59.5-05:30",
            "2024-02-29T00:00:00.123+00:00",
            "1999-12-31T23:59:59.123456+14:00",
            "2026-01-01T00:00:00-00:00",
        ] {
            assert_eq!(parse_ts_fast(s), Some(parse_ts(s).unwrap()), "{s}");
        }
        for s in ["2026-02-29T00:00:00Z", "2026-11-24 08:00:00+08:00", "2026-13-01T00:00:00Z", "2026-11-24T24:00:00Z"] {
            assert_eq!(parse_ts_fast(s), None, "{s}");
        }
    }
}
