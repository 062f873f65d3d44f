//! The options and what derives from them before any line is written: the window, the places
//! and the numbering of the base, which both the reference files and the event stream read.

use super::base::Base;
use super::calendar::Calendar;
use super::world::World;
use crate::time::Millis;

/// What to generate. Same options, byte-identical output.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    pub subscribers: usize,
    /// Total event lines to emit, exactly this many.
    pub events: usize,
    /// Epoch millis of local midnight of the first day.
    pub start: Millis,
    /// Events are spread over this many days (0 is treated as 1).
    pub days: u32,
    /// Local UTC offset used for the `ts` strings and for the diurnal rhythm.
    pub offset_secs: i32,
}

/// 2026-11-24T00:00:00+08:00.
const DEFAULT_START: Millis = 1_795_449_600_000;

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 7,
            subscribers: 10_000,
            events: 200_000,
            start: DEFAULT_START,
            days: 1,
            offset_secs: 8 * 3600,
        }
    }
}

/// Everything derived from the options that both reference data and events need.
pub(super) struct Model {
    pub(super) seed: u64,
    /// Subscribers, at least 1.
    pub(super) n: u32,
    pub(super) events: usize,
    pub(super) cal: Calendar,
    pub(super) world: World,
    pub(super) base: Base,
}

impl Model {
    pub(super) fn new(opts: &GenOptions) -> Model {
        let n = opts.subscribers.clamp(1, u32::MAX as usize / 2) as u32;
        let cal = Calendar::new(opts.start, opts.days, opts.offset_secs);
        Model {
            seed: opts.seed,
            n,
            events: opts.events,
            world: World::build(opts.seed, n as usize),
            base: Base::new(opts.seed, n, cal.days),
            cal,
        }
    }
}
