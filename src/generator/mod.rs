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
//! The files, from the bottom up (each uses only files listed before it):
//! - `rng`: the generator's own fixed random numbers; `records`: what an event line says, as
//!   small values with constructors.
//! - `world`: the places (areas, stations, the airport, the venue, stores, networks abroad) as
//!   tagged cells; `calendar`: the window's days and what happens on them (concerts, weather
//!   alerts, festivals, the cut-over); `base`: subscriber numbers, traffic ranks and churners.
//! - `model`: the options and all that derives from them; `subscribers`: each one's profile.
//!   The world, the calendar and the subscribers write the reference files.
//! - `clocks`: which stories start how often and when; `stream`: the merge of background ticks
//!   and episode lines by time, with the state kept per subscriber; `choice`: who an event is
//!   about and where they are.
//! - `background`: what one ordinary tick is (a location update, a CDR, a top-up, an IVR
//!   session, a CRM or profile update); `episodes`: the stories; `render`: records to JSON
//!   lines, and the live feed (`--follow`).

mod answers;
mod background;
mod base;
mod calendar;
mod choice;
mod clocks;
mod episodes;
mod model;
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

pub use model::GenOptions;
pub use render::follow;
pub use stream::Events;

use model::Model;
use subscribers::subscriber_line;
use world::{COUNTRIES, STORES, cell_line, country_line, store_line};

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
        stores: (0..STORES.len()).map(store_line).collect(),
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
    write_lines(&dir.join("subscribers.jsonl"), (0..m.n).map(|i| subscriber_line(&m, i)))?;
    write_lines(&dir.join("cells.jsonl"), m.world.cells.iter().map(cell_line))?;
    write_lines(&dir.join("calendar.jsonl"), m.cal.lines())?;
    write_lines(&dir.join("stores.jsonl"), (0..STORES.len()).map(store_line))?;
    write_lines(&dir.join("countries.jsonl"), COUNTRIES.iter().map(country_line))?;
    write_lines(&dir.join("events.jsonl"), Events::with_model(m))
}

/// Writes one line a string to a new file at `path`.
fn write_lines(path: &Path, lines: impl IntoIterator<Item = String>) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(path)?);
    for l in lines {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()
}
