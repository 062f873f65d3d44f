//! The largest durations, amounts and counts a rule may give, checked when the pack is compiled.
//!
//! Everything the engine schedules is event time plus a duration from a rule (a timer's `after`,
//! a contact's `expire_after`, a cap's window). Event times are milliseconds in an i64, and an
//! `after: 106751991160d` is just under i64::MAX: it passed every check, and on replay the sum
//! wrapped to a time in 1677 — the timer fired at once and actions carried
//! `"ts":"-9223370242035906616"`. Bounding what a rule may say makes every such sum fit with room
//! to spare; the run-time sums are saturating as well, so nothing wraps even if a bound is missed.

use crate::time::DAY;

/// The longest duration a rule may give: 100 years (36,525 days). Longer than any contact
/// policy or follow-up anyone means, and the sum of any event time tidings accepts (years 1 to
/// 9999, ±2.6e14 ms) and this (3.2e12 ms) is far inside an i64 (9.2e18).
pub const MAX_DURATION: i64 = 36_525 * DAY;

/// The largest amount of money a rule may write: 10,000,000,000 CNY (1e12 fen). Above any
/// balance, bill or top-up; a product of such an amount and any count a rule is likely to
/// write (up to six digits) still fits an i64.
pub const MAX_MONEY: i64 = 1_000_000_000_000;

/// The longest streak a campaign may ask for: 100 years of months.
pub const MAX_STREAK_MONTHS: u32 = 1_200;

/// Why a duration is refused; the caller says which duration.
pub const TOO_LONG: &str = "is longer than 100 years (36525d), the most a rule may give";

/// `Err(TOO_LONG)` when a duration (in ms) is longer than [`MAX_DURATION`].
pub fn duration(ms: i64) -> Result<i64, &'static str> {
    if ms > MAX_DURATION { Err(TOO_LONG) } else { Ok(ms) }
}

/// `Err(why)` when an amount (in fen) is larger than [`MAX_MONEY`].
pub fn money(fen: i64) -> Result<i64, &'static str> {
    if fen.unsigned_abs() > MAX_MONEY.unsigned_abs() {
        Err("is more than 10000000000 CNY, the most a rule may write")
    } else {
        Ok(fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_leave_room_for_any_event_time() {
        // The last millisecond of year 9999, plus the longest duration, still fits.
        let year_9999_end: i64 = 253_402_300_799_999;
        assert!(year_9999_end.checked_add(MAX_DURATION).is_some());
        assert!(duration(36_525 * DAY).is_ok());
        assert!(duration(36_526 * DAY).is_err());
        assert!(money(MAX_MONEY).is_ok());
        assert!(money(MAX_MONEY + 100).is_err());
        assert!(MAX_MONEY.checked_mul(999_999).is_some());
    }
}
