//! Reference data: subscribers, cells, the calendar and stores, loaded at start from JSON Lines
//! files in the data directory (`subscribers.jsonl`, `cells.jsonl`, `calendar.jsonl`,
//! `stores.jsonl`, `countries.jsonl` and the opt-out list `optout.txt`; each optional). Cells, calendar and stores are read-only and shared by every
//! shard; subscribers are handed to the shard that owns them, because `profile` events change
//! them and one owner per subscriber means no lock.
//!
//! Cell tags are interned to small integers at load so that rules compare integers.

mod cell_index;
mod names;
mod optouts;
mod subscriber;

pub use names::{Labels, Names, StrRef, Vocab};
pub use optouts::OptOutJournal;
pub use subscriber::{Brand, Dates, Dnd, Profile, ProfileChange, ProfileField, Status, SubscriberRecord, Tier};

use crate::time::{Millis, parse_ts};
use crate::util::Msisdn;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// An interned cell tag.
pub type TagId = u32;
/// Index of a cell in [`RefData::cells`].
pub type CellId = u32;

#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("{file}:{line}: {msg}")]
    Record { file: String, line: usize, msg: String },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub id: Box<str>,
    pub name: Box<str>,
    pub lat: f64,
    pub lon: f64,
    /// Sorted, deduplicated.
    pub tags: Vec<TagId>,
    /// Nearest store and its distance in metres, computed at load.
    pub nearest_store: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub id: Box<str>,
    pub name: Box<str>,
    pub address: Box<str>,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone)]
pub struct CalendarEntry {
    pub name: Box<str>,
    pub kind: Box<str>,
    pub title: Box<str>,
    /// The cell tag of the venue (`venue:workers_stadium`), if the entry has a place.
    pub venue: Option<TagId>,
    pub start: Millis,
    pub end: Millis,
    /// The performing artist (concerts, fan events), if any.
    pub artist: Option<Box<str>>,
    /// Where the event takes place, as the subscriber reads it (a fan event's address).
    pub place: Option<Box<str>>,
}

/// Shared, read-only reference data (subscribers are moved out to the shards at start).
#[derive(Debug, Default, Clone)]
pub struct RefData {
    pub cells: Vec<Cell>,
    /// Keyed inline (cell ids are about 17 bytes): a lookup compares the key where it lies in
    /// the table, not behind a pointer to a string elsewhere on the heap.
    cell_index: cell_index::CellIndex,
    /// Each cell's tags as a span of `cell_tag_pool` (its `tags` again): a move between cells
    /// reads both cells' tags, and a few dozen kilobytes for every cell stay in the cache where
    /// the cell records (two cache lines each) and their tag lists do not.
    cell_tag_spans: Vec<(u32, u32)>,
    cell_tag_pool: Vec<TagId>,
    pub tags: Vec<Box<str>>,
    tag_index: StrMap<TagId>,
    pub stores: Vec<Store>,
    pub calendar: Vec<CalendarEntry>,
    /// The operator-wide opt-out list (`optout.txt`, one number a line): no marketing or care
    /// contact on any channel, whatever the subscriber record says.
    pub optout: std::collections::HashSet<Msisdn>,
    /// Refusals subscribers made by reply, journaled by earlier runs (and this run's file).
    pub optout_journal: OptOutJournal,
    /// Roaming destinations by ISO code, for welcome messages with the local tariff.
    pub countries: HashMap<Box<str>, Country>,
}

/// A roaming destination and its tariff (`countries.jsonl`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Country {
    pub code: Box<str>,
    pub name: Box<str>,
    /// Voice, fen per minute.
    pub voice_fen: i64,
    /// SMS, fen each.
    #[serde(default)]
    pub sms_fen: i64,
    /// Data, fen per MB.
    #[serde(default)]
    pub data_fen: i64,
    /// A daily data pack, fen per day (0: none offered).
    #[serde(default)]
    pub day_pack_fen: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CellRecord {
    id: String,
    #[serde(default)]
    name: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreRecord {
    id: String,
    name: String,
    #[serde(default)]
    address: String,
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarRecord {
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    title: String,
    venue: Option<String>,
    start: String,
    end: String,
    artist: Option<String>,
    place: Option<String>,
}

/// Cell ids are looked up on every location event: a fast, fixed (deterministic) string hash
/// instead of SipHash.
type StrMap<V> = HashMap<Box<str>, V, foldhash::fast::FixedState>;

/// Subscribers as loaded, before they are distributed to shards: compact records and the
/// strings they point at. A later record for the same number replaces an earlier one.
#[derive(Debug, Default, Clone)]
pub struct Subscribers {
    pub names: Names,
    pub profiles: Vec<Profile>,
    /// How many subscribers these records do not know the engine may hold state for at once
    /// (`[engine] unknown_subscribers`; `None`: [`DEFAULT_UNKNOWN`]). Split among the shards.
    pub unknown_cap: Option<usize>,
}

/// The default of `[engine] unknown_subscribers`: see the README ("Unknown subscribers").
pub const DEFAULT_UNKNOWN: usize = 100_000;

impl Subscribers {
    pub fn new() -> Subscribers {
        Subscribers { names: Names::new(), profiles: Vec::new(), unknown_cap: None }
    }

    pub fn insert(&mut self, s: &SubscriberRecord) {
        self.profiles.push(Profile::new(s, true, &mut self.names));
    }

    /// The record of `m` (the last one loaded), rebuilt in full.
    pub fn get(&self, m: &Msisdn) -> Option<SubscriberRecord> {
        self.profiles.iter().rev().find(|p| p.msisdn == *m).map(|p| p.record(&self.names))
    }

    /// Splits the records by `part(msisdn)` into `n` tables with strings of their own.
    pub fn split(self, n: usize, part: impl Fn(Msisdn) -> usize) -> Vec<Subscribers> {
        if n <= 1 {
            return vec![self];
        }
        // Sized exactly first: with tens of millions of records, growing by doubling would copy
        // each part several times and hold the old copy while it does.
        let mut sizes = vec![0usize; n];
        self.profiles.iter().for_each(|p| sizes[part(p.msisdn)] += 1);
        let mut parts: Vec<Subscribers> = sizes
            .iter()
            .map(|&k| Subscribers {
                names: self.names.vocabularies(),
                profiles: Vec::with_capacity(k),
                unknown_cap: Some(self.unknown_cap.unwrap_or(DEFAULT_UNKNOWN).div_ceil(n)),
            })
            .collect();
        for mut p in self.profiles {
            let to = &mut parts[part(p.msisdn)];
            p.customer_id = to.names.add(self.names.get(p.customer_id));
            p.account_id = to.names.add(self.names.get(p.account_id));
            to.profiles.push(p);
        }
        parts
    }
}

impl RefData {
    /// The name of the store with id `id`, if the reference data has it.
    pub fn store_name(&self, id: &str) -> Option<&str> {
        self.stores.iter().find(|s| &*s.id == id).map(|s| &*s.name)
    }

    /// Loads every reference file present in `dir`. Missing files mean empty tables; a bad
    /// record stops the load with its file and line (reference data is curated, not streamed).
    pub fn load_dir(dir: &Path) -> Result<(RefData, Subscribers), RefError> {
        let mut rd = RefData::default();
        for_each_record(&dir.join("stores.jsonl"), |_, _, rec: StoreRecord| {
            check_coordinates(rec.lat, rec.lon)?;
            rd.stores.push(Store {
                id: rec.id.into(),
                name: rec.name.into(),
                address: rec.address.into(),
                lat: rec.lat,
                lon: rec.lon,
            });
            Ok(())
        })?;
        for_each_record(&dir.join("cells.jsonl"), |_, _, rec: CellRecord| {
            check_coordinates(rec.lat, rec.lon)?;
            rd.add_cell(&rec.id, &rec.name, rec.lat, rec.lon, &rec.tags);
            Ok(())
        })?;
        for_each_record(&dir.join("calendar.jsonl"), |_, _, rec: CalendarRecord| {
            let start = parse_ts(&rec.start)?;
            let end = parse_ts(&rec.end)?;
            if end < start {
                return Err(format!("calendar entry `{}` ends before it starts", rec.name));
            }
            rd.add_calendar(&rec.name, &rec.kind, &rec.title, rec.venue.as_deref(), start, end);
            if let Some(e) = rd.calendar.last_mut() {
                e.artist = rec.artist.map(Into::into);
                e.place = rec.place.map(Into::into);
            }
            Ok(())
        })?;
        for_each_record(&dir.join("countries.jsonl"), |_, _, rec: Country| {
            rd.countries.insert(rec.code.clone(), rec);
            Ok(())
        })?;
        let optout_path = dir.join("optout.txt");
        match std::fs::read(&optout_path) {
            Ok(bytes) => {
                let file = optout_path.display().to_string();
                for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    let t = utf8_line(line, &file, i + 1)?.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    let m = Msisdn::parse(t).ok_or_else(|| RefError::Record {
                        file: optout_path.display().to_string(),
                        line: i + 1,
                        msg: "expected a subscriber number (5 to 15 digits)".into(),
                    })?;
                    rd.optout.insert(m);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RefError::Io { file: optout_path.display().to_string(), source }),
        }
        rd.finish();
        let mut subs = Subscribers::new();
        for_each_record(&dir.join("subscribers.jsonl"), |_, _, rec: subscriber::SubscriberLine| {
            subs.insert(&SubscriberRecord::try_from(rec)?);
            Ok(())
        })?;
        Ok((rd, subs))
    }

    /// Adds a cell (used by the loader, the generator and rule tests).
    pub fn add_cell(&mut self, id: &str, name: &str, lat: f64, lon: f64, tags: &[String]) {
        let mut tag_ids: Vec<TagId> = tags.iter().map(|t| self.intern_tag(t)).collect();
        tag_ids.sort_unstable();
        tag_ids.dedup();
        let span = (self.cell_tag_pool.len() as u32, tag_ids.len() as u32);
        self.cell_tag_pool.extend_from_slice(&tag_ids);
        let cell = Cell {
            id: id.into(),
            name: if name.is_empty() { id.into() } else { name.into() },
            lat,
            lon,
            tags: tag_ids,
            nearest_store: None,
        };
        match self.cell_index.get(id) {
            Some(i) => {
                self.cells[i as usize] = cell;
                self.cell_tag_spans[i as usize] = span;
            }
            None => {
                self.cell_index.insert(id, self.cells.len() as CellId);
                self.cells.push(cell);
                self.cell_tag_spans.push(span);
            }
        }
    }

    /// The tags of cell `c` (sorted; none for a cell it does not have), as [`Cell::tags`].
    #[inline]
    pub fn cell_tags(&self, c: CellId) -> &[TagId] {
        match self.cell_tag_spans.get(c as usize) {
            Some(&(from, n)) => self.cell_tag_pool.get(from as usize..(from + n) as usize).unwrap_or_default(),
            None => &[],
        }
    }

    pub fn add_store(&mut self, id: &str, name: &str, address: &str, lat: f64, lon: f64) {
        self.stores.push(Store { id: id.into(), name: name.into(), address: address.into(), lat, lon });
    }

    pub fn add_calendar(
        &mut self,
        name: &str,
        kind: &str,
        title: &str,
        venue: Option<&str>,
        start: Millis,
        end: Millis,
    ) {
        let venue = venue.map(|v| self.intern_tag(v));
        self.calendar.push(CalendarEntry {
            name: name.into(),
            kind: kind.into(),
            title: if title.is_empty() { name.into() } else { title.into() },
            venue,
            start,
            end,
            artist: None,
            place: None,
        });
    }

    /// Computes derived tables (nearest store per cell, calendar order). Call after loading.
    pub fn finish(&mut self) {
        self.calendar.sort_by_key(|c| (c.start, c.name.clone()));
        for cell in &mut self.cells {
            cell.nearest_store = self
                .stores
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u32, distance_m(cell.lat, cell.lon, s.lat, s.lon)))
                .min_by_key(|&(i, d)| (d, i));
        }
    }

    pub fn intern_tag(&mut self, tag: &str) -> TagId {
        if let Some(&t) = self.tag_index.get(tag) {
            return t;
        }
        let id = self.tags.len() as TagId;
        self.tags.push(tag.into());
        self.tag_index.insert(tag.into(), id);
        id
    }

    /// The id of a tag, if any cell or calendar entry uses it.
    pub fn tag(&self, tag: &str) -> Option<TagId> {
        self.tag_index.get(tag).copied()
    }

    pub fn tag_name(&self, t: TagId) -> &str {
        self.tags.get(t as usize).map_or("", |s| s)
    }

    pub fn cell(&self, id: &str) -> Option<CellId> {
        self.cell_index.get(id)
    }

    /// Fetches where [`RefData::cell`] will look `id` up into the cache, for an event a few
    /// places ahead.
    #[inline]
    pub fn prefetch_cell(&self, id: &str) {
        self.cell_index.prefetch(id);
    }

    /// The calendar entry active at `now` whose venue is a tag of `cell`, first by start time.
    /// The cell's tags are read only once an entry with a venue is in progress (most of the
    /// time none is).
    pub fn calendar_at(&self, cell: Option<CellId>, now: Millis) -> Option<&CalendarEntry> {
        let cell = cell?;
        self.calendar.iter().find(|c| {
            c.start <= now && now < c.end && c.venue.is_some_and(|v| self.cell_tags(cell).binary_search(&v).is_ok())
        })
    }

    /// The festival (a calendar entry of kind `festival`) on at `now`, if any.
    pub fn festival_at(&self, now: Millis) -> Option<&CalendarEntry> {
        self.calendar.iter().find(|c| &*c.kind == "festival" && c.start <= now && now < c.end)
    }

    pub fn calendar_named(&self, name: &str) -> Option<&CalendarEntry> {
        self.calendar.iter().find(|c| &*c.name == name)
    }
}

/// Great-circle distance in metres (haversine), rounded.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> u32 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    (2.0 * 6_371_000.0 * a.sqrt().asin()).round() as u32
}

/// A line of a reference file as text (without a final `\r`), or the file, line and column of
/// the first byte that is not UTF-8 (serde and `BufRead::lines` name neither).
fn utf8_line<'l>(bytes: &'l [u8], file: &str, line: usize) -> Result<&'l str, RefError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        let col = std::str::from_utf8(&bytes[..valid]).map_or(valid, |s| s.chars().count()) + 1;
        RefError::Record {
            file: file.to_string(),
            line,
            msg: format!("column {col}: not UTF-8 (byte 0x{:02X}); reference files are UTF-8", bytes[valid]),
        }
    })
}

/// Latitude and longitude on the globe: a cell at latitude 999 would put every distance and
/// every "near" condition wrong without a word.
fn check_coordinates(lat: f64, lon: f64) -> Result<(), String> {
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} is not between -90 and 90"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} is not between -180 and 180"));
    }
    Ok(())
}

fn for_each_record<T: for<'de> Deserialize<'de>>(
    path: &Path,
    mut f: impl FnMut(&str, usize, T) -> Result<(), String>,
) -> Result<(), RefError> {
    use std::io::BufRead;
    let file = path.display().to_string();
    // Line by line: a subscriber file of 10 million records is gigabytes of text.
    let reader = match std::fs::File::open(path) {
        Ok(f) => std::io::BufReader::with_capacity(1 << 20, f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(RefError::Io { file, source }),
    };
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|source| RefError::Io { file: file.clone(), source })?;
        let line_no = i + 1;
        let line = utf8_line(&line, &file, line_no)?;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let rec: T = serde_json::from_str(line).map_err(|e| RefError::Record {
            file: file.clone(),
            line: line_no,
            msg: e.to_string(),
        })?;
        f(&file, line_no, rec).map_err(|msg| RefError::Record { file: file.clone(), line: line_no, msg })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cells_tags_read_alike_from_its_record_and_the_compact_spans_after_it_is_replaced() {
        let mut rd = RefData::default();
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        rd.add_cell("a", "", 0.0, 0.0, &tags(&["station", "city", "city"]));
        rd.add_cell("b", "", 0.0, 0.0, &[]);
        rd.add_cell("c", "", 0.0, 0.0, &tags(&["mall"]));
        rd.add_cell("a", "", 0.0, 0.0, &tags(&["airport"]));
        for (i, cell) in rd.cells.iter().enumerate() {
            assert_eq!(rd.cell_tags(i as CellId), &cell.tags[..], "cell {}", cell.id);
        }
        assert_eq!(rd.cell_tags(rd.cell("a").unwrap()), [rd.tag("airport").unwrap()]);
        assert!(rd.cell_tags(rd.cell("b").unwrap()).is_empty() && rd.cell_tags(99).is_empty());
    }

    fn load(file: &str, bytes: &[u8]) -> Result<(RefData, Subscribers), RefError> {
        let dir = std::env::temp_dir().join(format!("tidings-refdata-{}-{file}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), bytes).unwrap();
        let r = RefData::load_dir(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn invalid_utf8_in_reference_data_names_file_line_and_column() {
        let cells = b"{\"id\":\"C1\",\"lat\":31.2,\"lon\":121.4}\n{\"id\":\"C2\",\"name\":\"\xD6\xD0\",\"lat\":31.2,\"lon\":121.4}\n";
        let e = load("cells.jsonl", cells).unwrap_err().to_string();
        assert!(e.contains("cells.jsonl:2: column 20: not UTF-8 (byte 0xD6)"), "{e}");
        let e = load("optout.txt", b"13800138000\r\n1380013\xFF8001\n").unwrap_err().to_string();
        assert!(e.contains("optout.txt:2: column 8: not UTF-8 (byte 0xFF)"), "{e}");
        assert_eq!(load("optout.txt", b"13800138000\r\n13800138001\n").unwrap().0.optout.len(), 2);
    }

    #[test]
    fn a_cell_or_store_off_the_globe_is_refused_with_its_line() {
        let e = load(
            "cells.jsonl",
            b"{\"id\":\"C1\",\"lat\":31.2,\"lon\":121.4}\n{\"id\":\"C2\",\"lat\":999,\"lon\":121.4}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cells.jsonl:2: latitude 999 is not between -90 and 90"), "{e}");
        let e = load("stores.jsonl", b"{\"id\":\"S1\",\"name\":\"x\",\"lat\":31.2,\"lon\":-180.5}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stores.jsonl:1: longitude -180.5 is not between -180 and 180"), "{e}");
        assert!(
            load("cells.jsonl", b"{\"id\":\"C1\",\"lat\":-90,\"lon\":180}\n").is_ok(),
            "the edges are on the globe"
        );
    }
}
