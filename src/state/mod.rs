//! Per-subscriber state: what rules need to remember between events.
//!
//! Each shard owns the states of its subscribers outright, so nothing here locks. Windows are
//! sparse bucket lists (a subscriber who made three calls has three entries, not thirty days
//! of zeros), sequences keep one start time per step, and timers live with the subscriber so
//! they travel with its state (checkpoints, explain). The contact history that contact policy
//! counts caps over is the subscriber's too ([`ContactLog`]).
//!
//! A shard keeps its subscribers, record and state side by side, in the [`table`].

mod buckets;
pub mod checkpoint;
mod contacts;
mod derived;
mod distinct;
mod encode;
mod journey;
pub mod kept;
mod shape;
pub mod table;
mod timer;

use crate::event::IvrStep;
use crate::refdata::{Cell, CellId, RefData, TagId};
use crate::time::Millis;
use crate::util::ThinSlice;
pub use buckets::AggBuf;
pub use buckets::AggCap;
use buckets::{BucketList, agg_add_to, slot_range};
pub use contacts::{ContactLog, ContactRec};
pub use derived::{DVal, Derived};
pub use distinct::{DISTINCT_CAP, MAX_DISTINCT, MAX_DISTINCT_WINDOW};
pub use journey::JourneyInst;
pub use shape::Dropped;
use std::collections::VecDeque;
pub use timer::PendingTimer;

/// One IVR step, kept for personalisation and explain.
#[derive(Clone, Debug)]
pub struct IvrStepRec {
    pub ts: Millis,
    pub step: IvrStep,
    pub node: Option<Box<str>>,
}

/// One bucket of one window: `sum` of the events in bucket `idx` (time / bucket width) of window
/// `slot`, the two packed in one key that sorts by (slot, bucket): 16 bytes, not 24. A distinct
/// count's values are kept as buckets too, read differently (see [`distinct`]).
#[derive(Clone, Copy, Debug)]
struct AggBucket {
    key: u64,
    sum: i64,
}

/// How many windows a rule pack may have: slots take the top 16 bits of a bucket key, and the
/// top [`MAX_DISTINCT`] slots are the distinct counts'.
pub const MAX_WINDOWS: usize = (1 << 16) - MAX_DISTINCT;
/// Bucket indexes are offset by this into the low 48 bits: event times (years 0000-9999) over
/// buckets of a second or more stay far inside it.
const IDX_BIAS: i64 = 1 << 47;

impl AggBucket {
    fn new(slot: u32, idx: i64, sum: i64) -> AggBucket {
        AggBucket { key: (u64::from(slot) << 48) | ((idx + IDX_BIAS) as u64 & ((1 << 48) - 1)), sum }
    }
    fn slot(&self) -> u32 {
        (self.key >> 48) as u32
    }
    fn idx(&self) -> i64 {
        (self.key & ((1 << 48) - 1)) as i64 - IDX_BIAS
    }
}

#[derive(Clone, Debug, Default)]
pub struct SeqState {
    /// For each step but the last: the start time of the best partial match that reached it.
    starts: Vec<Option<Millis>>,
    /// `events_seen` when the sequence last completed.
    done_at: u32,
}

/// How many recent IVR steps a subscriber's state keeps.
pub const IVR_RECENT: usize = 16;

/// No time recorded: event times come from RFC 3339 text (years 0000-9999), so they never
/// reach `Millis::MIN`.
const NO_TIME: Millis = Millis::MIN;
/// No cell (never seen, or detached).
const NO_CELL: u32 = u32::MAX;
/// A cell the reference data does not know; its id is kept in [`Rare::unknown_cell`].
const UNKNOWN_CELL: u32 = u32::MAX - 1;

const HAS_BALANCE: u8 = 1;
const HAS_PREV_BALANCE: u8 = 2;
/// The subscriber may be in a journey (set whenever the list is handed out to change; the list
/// can be empty again): most events of most subscribers then need not read the rare part.
const IN_JOURNEY: u8 = 4;

fn time(t: Millis) -> Option<Millis> {
    (t != NO_TIME).then_some(t)
}

fn known(c: u32) -> Option<CellId> {
    (c < UNKNOWN_CELL).then_some(c)
}

/// Per-subscriber state, laid out for tens of millions of subscribers: what nearly every
/// subscriber uses is inline (times with a sentinel for "never", the cell as an index, presence
/// bits for the balances); lists a subscriber usually has one or two items of are exact-size
/// slices behind a thin pointer (8 bytes, nothing allocated while empty, no growth slack); what few
/// subscribers ever use (sequences, IVR steps, timers, contact history, a roaming country, an
/// unknown cell's id) sits behind one box allocated on first use.
#[derive(Clone, Debug)]
pub struct SubState {
    /// Events seen for this subscriber; identifies "the current event" for `entered` and `seq`.
    pub events_seen: u32,
    cell_changed_at: u32,
    /// The current cell: an index into the reference cells, [`NO_CELL`] or [`UNKNOWN_CELL`].
    cell: u32,
    /// The known cell before the last change ([`NO_CELL`] if it was none or unknown).
    prev_cell: u32,
    /// The newest of the recent cells (see `older_cells`), [`NO_CELL`] before any.
    last_cell: u32,
    flags: u8,
    last_event_at: Millis,
    cell_since: Millis,
    /// Time of the last usage record (calls, SMS, data), for silence checks.
    last_usage_at: Millis,
    /// Time and amount of the last top-up.
    last_topup_at: Millis,
    last_topup_fen: i64,
    balance: i64,
    /// The balance before the current event.
    prev_balance: i64,
    /// When the subscriber was last seen in `last_cell`.
    last_cell_seen: Millis,
    /// When the subscriber entered cells carrying each tag of the current cell, in the order of
    /// the cell's (sorted) tags; empty when every tag was entered with the cell (`cell_since`).
    zone_since: ThinSlice<Millis>,
    /// The distinct known cells seen before `last_cell` with the last time seen, oldest
    /// first; with `last_cell` at most [`RECENT_CELLS`], for `visited()`.
    older_cells: ThinSlice<(CellId, Millis)>,
    /// Windowed aggregates: every window's non-empty buckets in one slice, sorted by (slot,
    /// bucket); then the distinct counts' values, sorted by (slot, value hash).
    aggs: ThinSlice<AggBucket>,
    /// Derived attributes (`derive:`), in the order first computed.
    derived: ThinSlice<Derived>,
    rare: Option<Box<Rare>>,
}

/// The parts of a subscriber's state few subscribers ever need.
#[derive(Clone, Debug, Default)]
struct Rare {
    seqs: Vec<SeqState>,
    recent_ivr: VecDeque<IvrStepRec>,
    timers: Vec<PendingTimer>,
    /// Decided contacts, as far back as the caps look.
    contacts: ContactLog,
    /// The visited country while roaming abroad (ISO 3166 alpha-2), from location events.
    country: Option<Box<str>>,
    /// The id of the current cell when the reference data does not know it.
    unknown_cell: Option<Box<str>>,
    /// Refusals the subscriber made by reply (`TD`), oldest first; none covers another.
    /// Boxed: few subscribers ever refuse (8 bytes for the rest).
    #[allow(clippy::box_collection)] // 8 bytes when absent, where a Vec is 24
    optouts: Option<Box<Vec<crate::contact::OptOut>>>,
    /// The journeys the subscriber is in, one instance each (boxed as `optouts`).
    #[allow(clippy::box_collection)]
    journeys: Option<Box<Vec<JourneyInst>>>,
}

static NO_CONTACTS: ContactLog = ContactLog { recent: ThinSlice::new(), streaks: ThinSlice::new(), abouts: None };

impl SubState {
    /// Where the lists most events read live (window buckets, the rare part), for the shard to
    /// fetch into the cache a few events ahead.
    pub fn list_addrs(&self) -> [Option<*const u8>; 2] {
        [self.aggs.addr(), self.rare.as_deref().map(|r| (r as *const Rare).cast::<u8>())]
    }

    /// Where the recent cells (before the newest) live, for a daily pass that reads them.
    pub fn cells_addr(&self) -> Option<*const u8> {
        self.older_cells.addr()
    }

    /// Where the derived attributes live, for a daily pass of a pack that has some.
    pub fn derived_addr(&self) -> Option<*const u8> {
        self.derived.addr()
    }
}

impl Default for SubState {
    fn default() -> Self {
        SubState {
            events_seen: 0,
            cell_changed_at: 0,
            cell: NO_CELL,
            prev_cell: NO_CELL,
            last_cell: NO_CELL,
            flags: 0,
            last_event_at: NO_TIME,
            cell_since: NO_TIME,
            last_usage_at: NO_TIME,
            last_topup_at: NO_TIME,
            last_topup_fen: 0,
            balance: 0,
            prev_balance: 0,
            last_cell_seen: NO_TIME,
            zone_since: ThinSlice::default(),
            older_cells: ThinSlice::default(),
            aggs: ThinSlice::default(),
            derived: ThinSlice::default(),
            rare: None,
        }
    }
}

/// How many distinct recent cells a subscriber's state remembers for `visited()`.
pub const RECENT_CELLS: usize = 16;

/// Tags of a cell whose entry times a move gathers on the stack (more go through the heap).
const ZONE_TAGS_ON_STACK: usize = 8;

impl SubState {
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Starts processing one event: counters and balance.
    pub fn begin(&mut self, ts: Millis, balance: Option<i64>) {
        self.events_seen = self.events_seen.wrapping_add(1);
        self.last_event_at = self.last_event_at.max(ts);
        self.prev_balance = self.balance;
        self.flags =
            (self.flags & !HAS_PREV_BALANCE) | if self.flags & HAS_BALANCE != 0 { HAS_PREV_BALANCE } else { 0 };
        if let Some(b) = balance {
            self.balance = b;
            self.flags |= HAS_BALANCE;
        }
    }

    pub fn balance(&self) -> Option<i64> {
        (self.flags & HAS_BALANCE != 0).then_some(self.balance)
    }

    /// The balance before the current event.
    pub fn prev_balance(&self) -> Option<i64> {
        (self.flags & HAS_PREV_BALANCE != 0).then_some(self.prev_balance)
    }

    pub fn last_event_at(&self) -> Option<Millis> {
        time(self.last_event_at)
    }

    pub fn last_usage_at(&self) -> Option<Millis> {
        time(self.last_usage_at)
    }

    /// (time, amount) of the last top-up.
    pub fn last_topup(&self) -> Option<(Millis, i64)> {
        time(self.last_topup_at).map(|t| (t, self.last_topup_fen))
    }

    pub fn cell_since(&self) -> Option<Millis> {
        time(self.cell_since)
    }

    pub fn prev_cell(&self) -> Option<CellId> {
        known(self.prev_cell)
    }

    pub fn record_usage(&mut self, ts: Millis) {
        self.last_usage_at = self.last_usage_at.max(ts);
    }

    pub fn record_topup(&mut self, ts: Millis, amount: i64) {
        self.last_topup_at = ts;
        self.last_topup_fen = amount;
    }

    pub fn record_ivr(&mut self, ts: Millis, step: IvrStep, node: Option<Box<str>>) {
        let recent = &mut self.rare_mut().recent_ivr;
        if recent.len() == IVR_RECENT {
            recent.pop_front();
        }
        recent.push_back(IvrStepRec { ts, step, node });
    }

    /// The visited country while roaming abroad (ISO 3166 alpha-2).
    pub fn country(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.country.as_deref())
    }

    pub fn set_country(&mut self, country: Option<Box<str>>) {
        if country.is_some() || self.country().is_some() {
            self.rare_mut().country = country;
        }
    }

    /// Pending timers (a rule's delay or absence check, or a contact held for quiet hours).
    pub fn timers(&self) -> &[PendingTimer] {
        self.rare.as_ref().map_or(&[], |r| &r.timers)
    }

    /// Arms a pending timer. The list is kept exact-size, and its memory goes with its last
    /// timer: many subscribers have a timer for minutes (a held confirmation), few several.
    pub fn push_timer(&mut self, t: PendingTimer) {
        let timers = &mut self.rare_mut().timers;
        timers.reserve_exact(1);
        timers.push(t);
    }

    /// Takes pending timer `i` (a position in [`Self::timers`]) out: fired or cancelled.
    pub fn take_timer(&mut self, i: usize) -> PendingTimer {
        let timers = &mut self.rare_mut().timers;
        let t = timers.remove(i);
        timers.shrink_to_fit(); // exact-size still; freed with the last
        t
    }

    /// The journeys the subscriber is in.
    pub fn journeys(&self) -> &[JourneyInst] {
        if self.flags & IN_JOURNEY == 0 {
            return &[];
        }
        self.rare.as_ref().and_then(|r| r.journeys.as_deref()).map_or(&[], |v| &v[..])
    }

    pub fn journeys_mut(&mut self) -> &mut Vec<JourneyInst> {
        self.flags |= IN_JOURNEY;
        self.rare_mut().journeys.get_or_insert_with(Box::default)
    }

    /// Ends journey instance `i`; with the last one the list goes, and the subscriber's events
    /// no longer read the rare part to find none.
    pub fn end_journey(&mut self, i: usize) {
        if let Some(js) = self.rare.as_mut().and_then(|r| r.journeys.as_mut()) {
            if i < js.len() {
                js.remove(i);
            }
        }
        self.tidy_journeys();
    }

    /// Drops an empty journey list and the flag that says there may be one.
    fn tidy_journeys(&mut self) {
        if let Some(r) = self.rare.as_mut() {
            if r.journeys.as_ref().is_some_and(|js| js.is_empty()) {
                r.journeys = None;
            }
        }
        if self.rare.as_ref().is_none_or(|r| r.journeys.is_none()) {
            self.flags &= !IN_JOURNEY;
        }
    }

    /// The subscriber's derived attributes.
    pub fn derived(&self) -> &[Derived] {
        let all = self.derived.as_slice();
        // Room kept for values not computed yet is at the end.
        let n = all.iter().position(|d| d.slot == Derived::FREE).unwrap_or(all.len());
        &all[..n]
    }

    /// Derived attribute `slot`, if it was ever computed.
    pub fn derived_value(&self, slot: u16) -> Option<&Derived> {
        self.derived.as_slice().iter().find(|d| d.slot == slot)
    }

    /// Sets derived attribute `slot`. A subscriber's first value makes room for `room` values
    /// in all (the daily ones every subscriber gets), so that those computed later are written
    /// in place and the list is not made again for each.
    pub fn set_derived(&mut self, d: Derived, room: usize) {
        let items = self.derived.as_mut_slice();
        if let Some(x) = items.iter_mut().find(|x| x.slot == d.slot || x.slot == Derived::FREE) {
            *x = d;
            return;
        }
        // Made on the stack and copied once into the list (a pack has a few daily values).
        let n = room.max(items.len() + 1);
        let mut few = [Derived::free(); 8];
        let mut many = Vec::new();
        let buf: &mut [Derived] = if n <= few.len() {
            &mut few[..n]
        } else {
            many.resize(n, Derived::free());
            &mut many
        };
        buf[..items.len()].copy_from_slice(items);
        buf[items.len()] = d;
        self.derived = ThinSlice::from_slice(buf);
    }

    /// Drops derived attribute `slot` (its room is kept, at the end).
    pub fn remove_derived(&mut self, slot: u16) {
        let items = self.derived.as_mut_slice();
        if let Some(k) = items.iter().position(|d| d.slot == slot) {
            items[k..].rotate_left(1);
            if let Some(last) = items.last_mut() {
                *last = Derived::free();
            }
        }
    }

    /// Decided contacts, as far back as the caps look.
    pub fn contacts(&self) -> &ContactLog {
        self.rare.as_ref().map_or(&NO_CONTACTS, |r| &r.contacts)
    }

    pub fn contacts_mut(&mut self) -> &mut ContactLog {
        &mut self.rare_mut().contacts
    }

    /// The refusals the subscriber made by reply.
    pub fn optouts(&self) -> &[crate::contact::OptOut] {
        self.rare.as_ref().and_then(|r| r.optouts.as_deref()).map_or(&[], |v| &v[..])
    }

    /// Records a refusal unless one already recorded refuses all it does (`false` then: it
    /// changes nothing, and is not journaled again). Refusals it covers are dropped.
    pub fn add_optout(&mut self, o: crate::contact::OptOut) -> bool {
        if self.optouts().iter().any(|k| k.includes(&o)) {
            return false;
        }
        let list = self.rare_mut().optouts.get_or_insert_with(Box::default);
        list.retain(|k| !o.includes(k));
        list.push(o);
        true
    }

    fn unknown_cell(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.unknown_cell.as_deref())
    }

    fn tags_of(c: u32, refdata: &RefData) -> &[TagId] {
        known(c).map_or(&[], |c| refdata.cell_tags(c))
    }

    /// When the subscriber entered cells carrying the `j`th tag of the current cell.
    fn zone_entered(&self, j: usize) -> Millis {
        self.zone_since.get(j).copied().unwrap_or(self.cell_since)
    }

    /// Moves the subscriber to a cell (`None`: detached from the network).
    pub fn move_to(&mut self, cell: Option<&str>, now: Millis, refdata: &RefData) {
        let new = match cell {
            None => NO_CELL,
            Some(c) => refdata.cell(c).unwrap_or(UNKNOWN_CELL),
        };
        if let Some(id) = known(new) {
            self.see_cell(id, now);
        }
        if new == self.cell && (new != UNKNOWN_CELL || self.unknown_cell() == cell) {
            return;
        }
        self.prev_cell = known(self.cell).map_or(NO_CELL, |c| c);
        // Tags the new cell shares with the old keep the time they were entered; the others
        // start now.
        let old_tags = Self::tags_of(self.cell, refdata);
        let new_tags = Self::tags_of(new, refdata);
        let since = |t: &TagId| old_tags.binary_search(t).map_or(now, |j| self.zone_entered(j));
        // A cell has a few tags: their times are gathered on the stack. Most moves keep no tag's
        // time (nothing to store); a list of the same length is written in place.
        let (mut buf, heap): ([Millis; ZONE_TAGS_ON_STACK], Vec<Millis>);
        let times: &[Millis] = if new_tags.len() <= ZONE_TAGS_ON_STACK {
            buf = [0; ZONE_TAGS_ON_STACK];
            new_tags.iter().zip(buf.iter_mut()).for_each(|(t, b)| *b = since(t));
            &buf[..new_tags.len()]
        } else {
            heap = new_tags.iter().map(since).collect();
            &heap
        };
        if times.iter().all(|s| *s == now) {
            self.zone_since = ThinSlice::default();
        } else if self.zone_since.len() == times.len() {
            self.zone_since.as_mut_slice().copy_from_slice(times);
        } else {
            self.zone_since = ThinSlice::from_slice(times);
        }
        if new == UNKNOWN_CELL {
            self.rare_mut().unknown_cell = cell.map(Into::into);
        } else if self.unknown_cell().is_some() {
            self.rare_mut().unknown_cell = None;
        }
        self.cell = new;
        self.cell_since = if new == NO_CELL { NO_TIME } else { now };
        self.cell_changed_at = self.events_seen;
    }

    /// Records a known cell as the most recently seen.
    fn see_cell(&mut self, id: CellId, now: Millis) {
        if self.last_cell != id && self.last_cell != NO_CELL {
            let newest = (self.last_cell, self.last_cell_seen);
            // `id` leaves the list (it is the newest now) and the one before it joins at the
            // end, the oldest dropped when the list is full: in place but for a list that grows.
            let list = self.older_cells.as_mut_slice();
            let n = list.len();
            match list.iter().position(|(c, _)| *c == id) {
                _ if n >= RECENT_CELLS => self.older_cells.edit(|v| {
                    v.retain(|(c, _)| *c != id);
                    if v.len() + 1 == RECENT_CELLS {
                        v.remove(0);
                    }
                    v.push(newest);
                }),
                Some(i) => {
                    list.copy_within(i + 1.., i);
                    list[n - 1] = newest;
                }
                None if n + 1 == RECENT_CELLS => {
                    list.copy_within(1.., 0);
                    list[n - 1] = newest;
                }
                None => self.older_cells.splice(n..n, &[newest]),
            }
        }
        self.last_cell = id;
        self.last_cell_seen = now;
    }

    pub fn cell_ref<'r>(&self, refdata: &'r RefData) -> Option<&'r Cell> {
        known(self.cell).and_then(|c| refdata.cells.get(c as usize))
    }

    /// The cell the subscriber is in, when the reference data has it.
    pub fn known_cell(&self) -> Option<CellId> {
        known(self.cell)
    }

    pub fn cell_id_str<'a>(&'a self, refdata: &'a RefData) -> Option<&'a str> {
        match self.cell {
            NO_CELL => None,
            UNKNOWN_CELL => self.unknown_cell(),
            c => refdata.cells.get(c as usize).map(|c| &*c.id),
        }
    }

    fn moved_now(&self) -> bool {
        self.cell_changed_at == self.events_seen && self.events_seen != 0
    }

    fn prev_tags<'r>(&self, refdata: &'r RefData) -> &'r [TagId] {
        Self::tags_of(self.prev_cell, refdata)
    }

    /// The current event moved the subscriber into cells carrying one of `tags`.
    pub fn entered(&self, tags: &[TagId], refdata: &RefData) -> bool {
        if !self.moved_now() {
            return false;
        }
        let (now, prev) = (Self::tags_of(self.cell, refdata), self.prev_tags(refdata));
        tags.iter().any(|t| now.binary_search(t).is_ok() && prev.binary_search(t).is_err())
    }

    /// The current event moved the subscriber out of cells carrying one of `tags`.
    pub fn left(&self, tags: &[TagId], refdata: &RefData) -> bool {
        if !self.moved_now() {
            return false;
        }
        let (now, prev) = (Self::tags_of(self.cell, refdata), self.prev_tags(refdata));
        tags.iter().any(|t| prev.binary_search(t).is_ok() && now.binary_search(t).is_err())
    }

    /// Whether the subscriber was seen in a cell carrying one of `tags` within `window` of `now`.
    pub fn visited(&self, tags: &[TagId], window: i64, now: Millis, refdata: &RefData) -> bool {
        let newest = known(self.last_cell).map(|c| (c, self.last_cell_seen));
        self.older_cells.iter().copied().chain(newest).any(|(c, seen)| {
            seen > now - window && {
                let have = refdata.cell_tags(c);
                tags.iter().any(|t| have.binary_search(t).is_ok())
            }
        })
    }

    /// How long the subscriber has been in cells carrying any of `tags` (0 when not there).
    pub fn dwell(&self, tags: &[TagId], now: Millis, refdata: &RefData) -> i64 {
        Self::tags_of(self.cell, refdata)
            .iter()
            .enumerate()
            .filter(|(_, z)| tags.contains(z))
            .map(|(j, _)| (now - self.zone_entered(j)).max(0))
            .max()
            .unwrap_or(0)
    }

    /// The range of `aggs` holding `slot`'s buckets.
    /// No window bucket at all: every windowed sum, count and distinct count reads 0.
    #[inline]
    pub fn no_windows(&self) -> bool {
        self.aggs.as_slice().is_empty()
    }

    fn agg_range(&self, slot: u32) -> std::ops::Range<usize> {
        slot_range(&self.aggs, slot)
    }

    /// The index of the newest bucket of aggregate `slot`, if it has any.
    pub fn agg_newest(&self, slot: u32) -> Option<i64> {
        let range = self.agg_range(slot);
        range.end.checked_sub(1).filter(|_| !range.is_empty()).map(|last| self.aggs[last].idx())
    }

    /// Adds `amount` at `ts` to aggregate `slot`, dropping buckets that left the window.
    /// Whether it made a new bucket.
    pub fn agg_add(&mut self, slot: u32, ts: Millis, amount: i64, bucket: i64, window: i64) -> bool {
        let mut made = Vec::new();
        let def = AggCap { bucket, window, cap: 0 };
        self.agg_add_all(&[(slot, amount)], ts, |_| def, &mut AggBuf::default(), &mut made);
        !made.is_empty()
    }

    /// Adds an event's amounts at `ts` to their aggregates (`(slot, amount)`, each slot once;
    /// `def` gives a slot's bucket width and window), dropping buckets that left a window; the
    /// slots it made a new bucket in go to `made`. One amount changes the list in place (resized
    /// where the allocator can); of several, those that fall in a bucket there is are added where
    /// they are, and the first that must add or drop a bucket and those after it go through one
    /// copy of the list (in `buf`): an event that opens buckets in several windows moves the list
    /// once, not once a window.
    pub fn agg_add_all(
        &mut self,
        adds: &[(u32, i64)],
        ts: Millis,
        def: impl Fn(u32) -> AggCap,
        buf: &mut AggBuf,
        made: &mut Vec<u32>,
    ) {
        let mut add = |v: &mut dyn BucketList, (slot, amount): (u32, i64)| {
            if agg_add_to(v, slot, ts, amount, def(slot)) {
                made.push(slot);
            }
        };
        if let [one] = adds {
            return add(&mut self.aggs, *one);
        }
        let in_place = adds.iter().take_while(|&&(slot, amount)| {
            let AggCap { bucket, window, .. } = def(slot);
            self.agg_add_in_place(slot, ts, amount, bucket, window)
        });
        let k = in_place.count();
        if k < adds.len() {
            self.aggs.edit_in(&mut buf.0, |v| adds[k..].iter().for_each(|a| add(v, *a)));
        }
    }

    /// [`SubState::agg_add`] when it changes no bucket but the one the amount falls in (or
    /// none, an amount older than the window); `false`, changing nothing, when a bucket must be
    /// added or dropped.
    fn agg_add_in_place(&mut self, slot: u32, ts: Millis, amount: i64, bucket: i64, window: i64) -> bool {
        let idx = ts.div_euclid(bucket);
        let range = self.agg_range(slot);
        let Some(last) = range.end.checked_sub(1).filter(|_| !range.is_empty()) else { return false };
        let found = self.aggs[range.clone()].binary_search_by_key(&idx, AggBucket::idx);
        let newest = match found {
            Err(i) if range.start + i == range.end => return false,
            _ => self.aggs[last].idx(),
        };
        let oldest_live = (newest * bucket - window).div_euclid(bucket);
        if self.aggs[range.start].idx() < oldest_live {
            return false;
        }
        match found {
            Ok(i) => self.aggs[range.start + i].sum += amount,
            Err(_) if idx < oldest_live => {}
            Err(_) => return false,
        }
        true
    }

    /// Sum of aggregate `slot` over the window ending at `now`.
    pub fn agg_value_window(&self, slot: u32, now: Millis, bucket: i64, window: i64) -> i64 {
        let lo = now - window;
        self.aggs[self.agg_range(slot)]
            .iter()
            .skip_while(|b| (b.idx() + 1) * bucket <= lo)
            .take_while(|b| b.idx() * bucket <= now)
            .map(|b| b.sum)
            .sum()
    }

    /// When the sum [`SubState::agg_value_window`] reads at `now` next changes with no event
    /// counted: its oldest bucket leaves the window, or a bucket after `now` enters it
    /// (`Millis::MAX`: never).
    pub fn agg_settled_until(&self, slot: u32, now: Millis, bucket: i64, window: i64) -> Millis {
        let lo = now - window;
        let buckets = &self.aggs[self.agg_range(slot)];
        let leaves = buckets.iter().find(|b| (b.idx() + 1) * bucket > lo && b.idx() * bucket <= now);
        let enters = buckets.iter().find(|b| b.idx() * bucket > now);
        let leaves = leaves.map_or(Millis::MAX, |b| (b.idx() + 1) * bucket + window);
        leaves.min(enters.map_or(Millis::MAX, |b| b.idx() * bucket))
    }

    /// Advances sequence `slot` with which of its steps the current event matches.
    pub fn seq_step(&mut self, slot: u32, matches: &[bool], now: Millis, within: i64) {
        let events_seen = self.events_seen;
        let seqs = &mut self.rare_mut().seqs;
        let slot = slot as usize;
        if seqs.len() <= slot {
            seqs.resize_with(slot + 1, SeqState::default);
        }
        let n = matches.len();
        let s = &mut seqs[slot];
        if s.starts.len() != n - 1 {
            s.starts = vec![None; n - 1];
        }
        // Last step first, so that one event cannot advance two steps at once.
        for j in (1..n).rev() {
            if !matches[j] {
                continue;
            }
            if let Some(start) = s.starts[j - 1].filter(|st| now - st <= within) {
                if j == n - 1 {
                    s.done_at = events_seen;
                } else {
                    s.starts[j] = Some(s.starts[j].map_or(start, |cur| cur.max(start)));
                }
            }
        }
        if matches[0] && n > 1 {
            s.starts[0] = Some(now);
        } else if matches[0] {
            s.done_at = events_seen;
        }
    }

    pub fn seq_completed_now(&self, slot: u32) -> bool {
        let seqs = self.rare.as_ref().map_or(&[][..], |r| &r.seqs);
        seqs.get(slot as usize).is_some_and(|s| s.done_at == self.events_seen && s.done_at != 0)
    }

    fn recent_ivr(&self) -> impl DoubleEndedIterator<Item = &IvrStepRec> {
        self.rare.iter().flat_map(|r| r.recent_ivr.iter())
    }

    /// How many times in the `window` up to `now` the caller reached an agent at `node`.
    pub fn ivr_agent_at(&self, node: &str, window: i64, now: Millis) -> i64 {
        self.recent_ivr()
            .filter(|r| {
                r.step == IvrStep::Agent && r.node.as_deref() == Some(node) && r.ts > now - window && r.ts <= now
            })
            .count() as i64
    }

    /// The menu node of the caller's latest IVR step before the current event.
    pub fn ivr_last_node(&self, current_is_ivr: bool) -> Option<&str> {
        let skip = usize::from(current_is_ivr);
        self.recent_ivr().rev().skip(skip).find_map(|r| r.node.as_deref())
    }

    /// Number of non-empty aggregate buckets held (for memory accounting and explain).
    pub fn agg_buckets(&self) -> usize {
        self.aggs.len()
    }
}

#[cfg(test)]
mod tests;

/// How a subscriber's state carries over from one rule set to the next (hot reload): for each
/// old rule, campaign, window slot and sequence slot, its index in the new set, or `None` when
/// it is gone.
#[derive(Clone, Debug, Default)]
pub struct Remap {
    pub rules: Vec<Option<u32>>,
    pub campaigns: Vec<Option<u16>>,
    pub aggs: Vec<Option<u32>>,
    pub seqs: Vec<Option<u32>>,
    /// Distinct counts, by their compiled definition.
    pub distinct: Vec<Option<u32>>,
    /// Journey steps, by journey and step name.
    pub steps: Vec<Option<u32>>,
    /// Derived attributes, by name and type.
    pub derived: Vec<Option<u16>>,
}

/// A contact record's rule or campaign that is no longer in the rule set. The record still
/// counts toward caps across all touchpoints; no rule or campaign cap matches it.
pub const RETIRED: u16 = u16::MAX;

impl SubState {
    /// Carries the state over to a new rule set: windows, distinct counts and sequences whose
    /// definition is unchanged keep their buckets (values, steps), timers of rules still there keep running, the contact
    /// history keeps counting (rules and campaigns that are gone become [`RETIRED`]).
    pub fn remap(&mut self, r: &Remap) {
        if !self.derived.is_empty() {
            self.derived.edit(|v| {
                v.retain_mut(|d| r.derived.get(d.slot as usize).copied().flatten().map(|s| d.slot = s).is_some());
            });
        }
        if !self.aggs.is_empty() {
            self.aggs.edit(|v| {
                v.retain_mut(|b| match distinct::remap_slot(b.slot(), r) {
                    Some(slot) => {
                        b.key = (u64::from(slot) << 48) | (b.key & ((1 << 48) - 1));
                        true
                    }
                    None => false,
                });
                v.sort_by_key(|b| b.key);
            });
        }
        let Some(rare) = self.rare.as_mut() else { return };
        if !rare.seqs.is_empty() {
            let mut seqs: Vec<SeqState> = Vec::new();
            for (old, s) in std::mem::take(&mut rare.seqs).into_iter().enumerate() {
                if let Some(new) = r.seqs.get(old).copied().flatten() {
                    let new = new as usize;
                    if seqs.len() <= new {
                        seqs.resize_with(new + 1, SeqState::default);
                    }
                    seqs[new] = s;
                }
            }
            rare.seqs = seqs;
        }
        rare.timers.retain_mut(|t| match r.rules.get(t.rule as usize).copied().flatten() {
            Some(rule) => {
                t.rule = rule;
                true
            }
            None => false,
        });
        rare.contacts.remap(r);
        if let Some(js) = rare.journeys.as_mut() {
            js.retain_mut(|j| r.steps.get(j.step as usize).copied().flatten().map(|s| j.step = s).is_some());
        }
        self.tidy_journeys();
    }
}

#[cfg(test)]
mod encode_tests;
