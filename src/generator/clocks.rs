//! The episode clocks: which stories start how many times a day, in which hours of the day.
//! The stream schedules each clock's starts; `episodes` plays out what a start begins.

use super::model::Model;
use crate::time::{HOUR, MINUTE, Millis};

/// The kinds of story, one clock each (rail and airport travellers share a story).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ep {
    Rail,
    Airport,
    LongDistance,
    Concert,
    IvrTopic3,
    LowBalance,
    StoreCash,
    Roaming,
    WeatherTrip,
    Churn,
}

/// Starts `per_day` episodes of a kind a day, spread over `from..to` after local midnight.
pub(super) struct Clock {
    pub(super) ep: Ep,
    pub(super) per_day: u32,
    pub(super) from: Millis,
    pub(super) to: Millis,
}

/// Charged usage lines a day per churner while they still spend.
const CHURN_USES: usize = 4;

/// The episode clocks of a run. Episodes scale with traffic per day, with a floor so that small
/// runs still show each.
pub(super) fn clocks(m: &Model) -> Vec<Clock> {
    let rate = m.events / m.cal.days as usize;
    let per = |div: usize, floor: usize| (rate / div).max(floor) as u32;
    let mut clocks = vec![
        Clock { ep: Ep::Rail, per_day: per(15_000, 4), from: 6 * HOUR + 30 * MINUTE, to: 20 * HOUR },
        Clock { ep: Ep::Airport, per_day: per(40_000, 3), from: 6 * HOUR, to: 19 * HOUR },
        Clock { ep: Ep::LongDistance, per_day: per(10_000, 4), from: 9 * HOUR, to: 15 * HOUR + 30 * MINUTE },
        Clock { ep: Ep::Concert, per_day: per(8_000, 5), from: 18 * HOUR + 50 * MINUTE, to: 19 * HOUR + 30 * MINUTE },
        Clock { ep: Ep::IvrTopic3, per_day: per(10_000, 4), from: 8 * HOUR, to: 19 * HOUR },
        Clock { ep: Ep::LowBalance, per_day: per(10_000, 4), from: 7 * HOUR, to: 19 * HOUR },
        Clock { ep: Ep::StoreCash, per_day: per(20_000, 3), from: 9 * HOUR + 30 * MINUTE, to: 19 * HOUR + 30 * MINUTE },
        Clock { ep: Ep::Roaming, per_day: per(40_000, 2), from: 6 * HOUR, to: 13 * HOUR },
        // Arrivals (40 to 120 minutes after the start) fall between 09:00 and 20:00.
        Clock { ep: Ep::WeatherTrip, per_day: per(20_000, 4), from: 8 * HOUR + 20 * MINUTE, to: 18 * HOUR },
    ];
    // Every churner's day: a few charged calls and sessions, spread over the waking hours.
    if !m.base.churners.is_empty() {
        let per_day = (m.base.churners.len() * CHURN_USES).min(u32::MAX as usize) as u32;
        clocks.push(Clock { ep: Ep::Churn, per_day, from: 8 * HOUR, to: 22 * HOUR });
    }
    clocks
}
