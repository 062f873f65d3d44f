//! Synthetic subscribers, cells, calendar, stores and event streams, reproducible from a seed.
//!
//! Why it exists: real CDRs, location updates and CRM records cannot leave an operator, yet the
//! rule pack, the demo run and the load tests need traffic that looks like an operator's: mostly
//! dull location updates and usage records following the day's rhythm, with the stories the
//! rules look for (a traveller at a station with a low balance, a fan staying through a concert,
//! a caller looping in the IVR) buried in it at realistic rates.
//!
//! How it models traffic:
//! - Every subscriber attribute is a pure function of `(seed, index)`, so the event side can look
//!   up anyone's profile without holding a million profiles. Only a prepaid balance and a few
//!   flag bits per subscriber are kept (5 bytes each), because a balance that jumps around between
//!   records would make the balance rules fire on noise.
//! - A background clock walks time forward: its ticks are quantiles of a diurnal density (quiet
//!   01:00-06:00, peaks mid-morning and evening), and each tick is one ordinary event for a
//!   subscriber drawn with a skew (a few heavy users, a long tail).
//! - Episodes (multi-event stories) are started by per-kind clocks in their plausible time of
//!   day and push their follow-ups into a min-heap, merged with the background by time. Every
//!   line an episode schedules is paid for by skipping one background tick, which keeps the
//!   total at exactly `events` lines and memory bounded by the episodes in flight.
//!
//! Where each part lives, in the order a line is made:
//! - `world`: the places (areas, stations, the airport, the venue, stores, networks abroad) as
//!   tagged cells; `calendar`: the window's days and what happens on them (concerts, weather
//!   alerts, festivals, the cut-over); `subscribers`: who is who. These also write the
//!   reference files.
//! - `stream`: the event stream itself, the merge of background ticks and episode lines by time,
//!   with the little state it keeps per subscriber (balance, flags).
//! - `background`: what one ordinary tick is (a location update, a CDR, a top-up, an IVR
//!   session, a CRM or profile update); `episodes`: the stories and the clocks that start them.
//! - `records`: what a line says, as small values with constructors; `render`: records to JSON
//!   lines, and the live feed (`--follow`).

mod background;
mod calendar;
mod episodes;
mod records;
mod render;
mod rng;
mod stream;
mod subscribers;
#[cfg(test)]
mod tests;
mod world;

use std::io::Write as _;
use std::path::Path;

pub use render::follow;
pub use stream::Events;

use calendar::Calendar;
use subscribers::{Base, subscriber_line};
use world::{COUNTRIES, STORES, World, cell_line, country_line, store_line};

use crate::util::Millis;

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

/// Reference data, one JSON object per entry, no trailing newline.
pub struct RefFiles {
    pub subscribers: Vec<String>,
    pub cells: Vec<String>,
    pub calendar: Vec<String>,
    pub stores: Vec<String>,
    /// Roaming destinations with their tariffs, one per country the roaming episodes visit.
    pub countries: Vec<String>,
}

/// All reference data in memory. For large subscriber counts prefer [`write_dir`], which
/// streams the subscriber file.
pub fn reference(opts: &GenOptions) -> RefFiles {
    let m = Model::new(opts);
    RefFiles {
        subscribers: (0..m.n).map(|i| subscriber_line(&m, i)).collect(),
        cells: m.world.cells.iter().map(cell_line).collect(),
        calendar: m.cal.lines(),
        stores: STORES.iter().enumerate().map(|(k, _)| store_line(k)).collect(),
        countries: COUNTRIES.iter().map(country_line).collect(),
    }
}

/// Event lines (JSON, no newline) in non-decreasing `ts` order, exactly `opts.events` of them.
pub fn events(opts: &GenOptions) -> Events {
    Events::new(opts)
}

/// Writes subscribers.jsonl, cells.jsonl, calendar.jsonl, stores.jsonl, countries.jsonl and
/// events.jsonl into `dir`, creating it. Streams both subscribers and events, so memory stays flat.
pub fn write_dir(opts: &GenOptions, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let m = Model::new(opts);
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(dir.join(name))?))
    };
    let mut w = open("subscribers.jsonl")?;
    for i in 0..m.n {
        writeln!(w, "{}", subscriber_line(&m, i))?;
    }
    w.flush()?;
    let mut w = open("cells.jsonl")?;
    for c in &m.world.cells {
        writeln!(w, "{}", cell_line(c))?;
    }
    w.flush()?;
    let mut w = open("calendar.jsonl")?;
    for l in m.cal.lines() {
        writeln!(w, "{l}")?;
    }
    w.flush()?;
    let mut w = open("stores.jsonl")?;
    for k in 0..STORES.len() {
        writeln!(w, "{}", store_line(k))?;
    }
    w.flush()?;
    let mut w = open("countries.jsonl")?;
    for c in &COUNTRIES {
        writeln!(w, "{}", country_line(c))?;
    }
    w.flush()?;
    let mut w = open("events.jsonl")?;
    for l in Events::with_model(m) {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Everything derived from the options that both reference data and events need.
struct Model {
    seed: u64,
    /// Subscribers, at least 1.
    n: u32,
    events: usize,
    cal: Calendar,
    world: World,
    base: Base,
}

impl Model {
    fn new(opts: &GenOptions) -> Model {
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
