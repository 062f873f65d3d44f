//! A shard: the single owner of a set of subscribers. `process` is a plain synchronous
//! function of (state, event) -> decisions; threads and channels live in the pipeline, so the
//! rule tests and the one-shard path call it directly. Contact policy runs here too, on the
//! subscriber's own state, so it needs no lock either.

use crate::contact::{Candidate, Channel, Decision, Deferred, OrderKey, Outcome, TriggerRef};
use crate::event::{Body, Event, LocTrigger};
use crate::policy::{ContactPolicy, DecideCtx, ShadowContacts};
use crate::refdata::{Names, Profile, RefData, Subscribers};
use crate::rules::expr::{Ctx, Local};
use crate::rules::{Rule, RuleSet};
use crate::state::{PendingTimer, SubState};
use crate::time::{DAY, MINUTE, Millis, format_ts};
use crate::util::{Msisdn, mix64};
use std::collections::BTreeSet;
use std::sync::Arc;

mod unknown;

/// One subscriber of a shard: its record and its state.
pub struct Entry<'s> {
    pub sub: &'s mut Profile,
    pub state: &'s mut SubState,
}

impl Entry<'_> {
    /// The evaluation context for this subscriber at `now`.
    fn ctx<'a>(
        &'a self,
        event: Option<&'a Event>,
        now: Millis,
        local: Local,
        refdata: &'a RefData,
        names: &'a Names,
        offset: chrono::FixedOffset,
    ) -> Ctx<'a> {
        Ctx { event, now, local, sub: self.sub, names, state: self.state, refdata, offset }
    }
}

/// Entries of a [`Grown`] past the loaded ones go in blocks of this many.
const BLOCK: usize = 1 << 14;

/// A vector that never moves what it holds: the entries it starts with stay where they are, and
/// those added later go into blocks of [`BLOCK`] allocated as needed. Growing a plain vector
/// copies all of it at once (a stall of tens of milliseconds at 100,000 subscribers, seconds at
/// 10 million, and twice the memory meanwhile); here it costs one block now and then.
struct Grown<T> {
    first: Vec<T>,
    /// Full blocks but the last.
    more: Vec<Vec<T>>,
}

impl<T> Default for Grown<T> {
    fn default() -> Self {
        Grown::from(Vec::new())
    }
}

impl<T> From<Vec<T>> for Grown<T> {
    fn from(first: Vec<T>) -> Self {
        Grown { first, more: Vec::new() }
    }
}

impl<T> Grown<T> {
    fn len(&self) -> usize {
        self.first.len() + self.more.last().map_or(0, |b| (self.more.len() - 1) * BLOCK + b.len())
    }

    fn push(&mut self, v: T) {
        match self.more.last_mut() {
            Some(b) if b.len() < BLOCK => b.push(v),
            _ => {
                let mut b = Vec::with_capacity(BLOCK);
                b.push(v);
                self.more.push(b);
            }
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        match i.checked_sub(self.first.len()) {
            None => self.first.get(i),
            Some(j) => self.more.get(j / BLOCK)?.get(j % BLOCK),
        }
    }

    #[inline]
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        match i.checked_sub(self.first.len()) {
            None => self.first.get_mut(i),
            Some(j) => self.more.get_mut(j / BLOCK)?.get_mut(j % BLOCK),
        }
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(self.more.iter_mut().flat_map(|b| b.iter_mut()))
    }

    /// Removes entry `i`, the last entry taking its place.
    fn swap_remove(&mut self, i: usize) -> T {
        let last = match self.more.last_mut() {
            Some(b) => {
                let v = b.pop().expect("blocks are never empty");
                if b.is_empty() {
                    self.more.pop();
                }
                v
            }
            None => self.first.pop().expect("an entry to remove"),
        };
        if i == self.len() { last } else { std::mem::replace(&mut self[i], last) }
    }

    /// Bytes held, reserved room included.
    fn bytes(&self) -> usize {
        (self.first.capacity() + self.more.iter().map(Vec::capacity).sum::<usize>()) * std::mem::size_of::<T>()
    }
}

impl<T> std::ops::Index<usize> for Grown<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("an entry of the table")
    }
}

impl<T> std::ops::IndexMut<usize> for Grown<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("an entry of the table")
    }
}

/// A shard's subscribers: records and states in two vectors side by side (the loaded records
/// become the first one as they are, without a copy), found by number through [`Slots`].
#[derive(Default)]
pub struct SubTable {
    profiles: Grown<Profile>,
    states: Grown<SubState>,
    index: Slots,
    /// Set while a checkpoint copies this table (see [`Shard::snapshot_step`]).
    snap: Option<Box<SnapMarks>>,
    /// Subscribers the reference data does not know, held up to a bound ([`unknown`]).
    unknown: unknown::Unknown,
}

/// Copy-before-modify for a checkpoint in progress: the subscribers that were in the table at
/// the checkpoint's batch boundary (`upto`), which of them are copied already, and copies of
/// those a batch was about to change before the background pass reached them.
struct SnapMarks {
    upto: u32,
    copied: Vec<u64>,
    saved: Vec<(Profile, SubState)>,
}

impl SnapMarks {
    fn is_copied(&self, i: u32) -> bool {
        i >= self.upto || self.copied[i as usize / 64] & (1 << (i % 64)) != 0
    }
    fn mark(&mut self, i: u32) {
        self.copied[i as usize / 64] |= 1 << (i % 64);
    }
}

/// Positions in the subscriber vectors by number: open addressing with linear probing over
/// `u32` slots, at most three quarters full. A number's first slot follows from its hash alone,
/// so the pipeline can fetch it, and then the entry it points at, into the cache a few events
/// before they are needed (a general hash table's lookup would itself stall on those misses).
/// 4 bytes a slot: 5 to 11 bytes a subscriber.
struct Slots {
    slots: Vec<u32>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

impl Default for Slots {
    fn default() -> Self {
        Slots::with_capacity(0)
    }
}

impl Slots {
    fn with_capacity(n: usize) -> Slots {
        Slots { slots: vec![EMPTY; (n * 4 / 3 + 1).next_power_of_two().max(16)], len: 0 }
    }

    fn first(&self, h: u64) -> usize {
        h as usize & (self.slots.len() - 1)
    }

    /// The position `eq` accepts, or the empty slot where it would go.
    fn find(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<u32, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.first(h);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                p if eq(p) => return Ok(p),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The slot holding the position `eq` accepts.
    fn slot_of(&self, h: u64, eq: impl Fn(u32) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.first(h);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                p if eq(p) => return Ok(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Takes position `pos` out, shifting back the entries after it that probed past its slot
    /// (no tombstones: lookups stay as short as they were).
    fn remove(&mut self, pos: u32, hash_of: impl Fn(u32) -> u64) {
        let Ok(mut hole) = self.slot_of(hash_of(pos), |p| p == pos) else { return };
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let p = self.slots[j];
            if p == EMPTY {
                break;
            }
            let home = self.first(hash_of(p));
            // `p` may move to the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                self.slots[hole] = p;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
    }

    /// Puts `pos` in the empty slot `at` (from `find`); false when the table must grow first.
    fn insert(&mut self, at: usize, pos: u32) -> bool {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            return false;
        }
        self.slots[at] = pos;
        self.len += 1;
        true
    }

    fn grow(&mut self, hash_of: impl Fn(u32) -> u64) {
        let bigger = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, bigger);
        for p in old.into_iter().filter(|p| *p != EMPTY) {
            if let Err(at) = self.find(hash_of(p), |_| false) {
                self.slots[at] = p;
            }
        }
    }
}

/// Asks the CPU to start loading the cache line at `p` (a hint: it reads nothing and cannot fault).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is an architectural hint; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl SubTable {
    fn hash(m: Msisdn) -> u64 {
        mix64(m.raw())
    }

    /// The table of `profiles`; a later record for the same number replaces an earlier one.
    fn new(mut profiles: Vec<Profile>) -> SubTable {
        let mut index = Slots::with_capacity(profiles.len());
        let mut kept = 0;
        for i in 0..profiles.len() {
            let m = profiles[i].msisdn;
            let ps = &profiles[..kept];
            match index.find(Self::hash(m), |j| ps[j as usize].msisdn == m) {
                Ok(j) => profiles.swap(j as usize, i),
                Err(at) => {
                    // Sized for every record: no growth here.
                    index.insert(at, kept as u32);
                    profiles.swap(kept, i);
                    kept += 1;
                }
            }
        }
        profiles.truncate(kept);
        let states: Vec<SubState> = std::iter::repeat_with(SubState::default).take(kept).collect();
        SubTable { profiles: profiles.into(), states: states.into(), index, snap: None, unknown: Default::default() }
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.len() == 0
    }

    /// Entry `i` to read only: a checkpoint in progress does not copy it first (whatever is
    /// changed must go through [`SubTable::at`]).
    fn read(&mut self, i: u32) -> Entry<'_> {
        Entry { sub: &mut self.profiles[i as usize], state: &mut self.states[i as usize] }
    }

    fn at(&mut self, i: u32) -> Entry<'_> {
        // About to be changed: a checkpoint in progress keeps the state as it was first.
        if let Some(s) = &mut self.snap {
            if !s.is_copied(i) {
                s.mark(i);
                s.saved.push((self.profiles[i as usize].clone(), self.states[i as usize].clone()));
            }
        }
        Entry { sub: &mut self.profiles[i as usize], state: &mut self.states[i as usize] }
    }

    pub fn get_mut(&mut self, m: Msisdn) -> Option<Entry<'_>> {
        let ps = &self.profiles;
        let i = self.index.find(Self::hash(m), |i| ps[i as usize].msisdn == m).ok()?;
        Some(self.at(i))
    }

    /// The entry of `m`, with the record `make` gives when there is none.
    pub fn get_or_insert(&mut self, m: Msisdn, make: impl FnOnce() -> Profile) -> Entry<'_> {
        let h = Self::hash(m);
        let ps = &self.profiles;
        let i = match self.index.find(h, |i| ps[i as usize].msisdn == m) {
            Ok(i) => i,
            Err(mut at) => {
                let i = self.profiles.len() as u32;
                if !self.index.insert(at, i) {
                    self.index.grow(|j| Self::hash(ps[j as usize].msisdn));
                    at = self.index.find(h, |_| false).expect_err("an empty slot after growing");
                    self.index.insert(at, i);
                }
                let p = make();
                if !p.known() {
                    self.unknown.added(m, 1);
                }
                self.profiles.push(p);
                self.states.push(SubState::default());
                i
            }
        };
        self.at(i)
    }

    /// Fetches the first index slot of `m` into the cache (for an event some way ahead).
    pub fn prefetch_slot(&self, m: Msisdn) {
        prefetch(&self.slots()[self.index.first(Self::hash(m))]);
    }

    /// Fetches the record and state the first index slot of `m` points at (for an event a few
    /// places ahead, its slot fetched by [`SubTable::prefetch_slot`] earlier). A wrong guess on
    /// a collision costs a wasted fetch, nothing else.
    pub fn prefetch_entry(&self, m: Msisdn) {
        let p = self.guess(m);
        if let (Some(sub), Some(st)) = (self.profiles.get(p), self.states.get(p)) {
            prefetch(sub);
            let st = (st as *const SubState).cast::<u8>();
            prefetch(st);
            prefetch(st.wrapping_add(std::mem::size_of::<SubState>() - 1));
        }
    }

    /// Fetches the lists of the state the first index slot of `m` points at (window buckets,
    /// the rare part), for an event a few places ahead whose state was fetched earlier
    /// ([`SubTable::prefetch_entry`]).
    pub fn prefetch_lists(&self, m: Msisdn) {
        if let Some(st) = self.states.get(self.guess(m)) {
            for a in st.list_addrs().into_iter().flatten() {
                prefetch(a);
            }
        }
    }

    fn slots(&self) -> &[u32] {
        &self.index.slots
    }

    /// The entry `m`'s first index slot points at: `m`'s own unless its slot collided (or
    /// empty: past the end).
    fn guess(&self, m: Msisdn) -> usize {
        self.slots()[self.index.first(Self::hash(m))] as usize
    }

    /// Every entry, to change. A checkpoint in progress must be finished first
    /// ([`Shard::snapshot_finish`]): the entries are not copied one by one here.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = Entry<'_>> {
        debug_assert!(self.snap.is_none(), "a checkpoint in progress is finished before a sweep");
        self.profiles.iter_mut().zip(self.states.iter_mut()).map(|(sub, state)| Entry { sub, state })
    }

    /// Memory held by the table itself (records and states inline, index slots), for accounting.
    pub fn bytes(&self) -> usize {
        self.profiles.bytes() + self.states.bytes() + self.index.slots.len() * 4
    }
}

/// Timer index entry: see [`PendingTimer::index_key`].
type TimerKey = (Millis, u64, u32, u64, bool);

pub struct Shard {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub policy: Arc<ContactPolicy>,
    pub subs: SubTable,
    /// The strings of this shard's subscriber records.
    pub names: Names,
    timers: BTreeSet<TimerKey>,
    pub offset: chrono::FixedOffset,
    /// Reused per event to avoid allocating.
    scratch_aggs: Vec<(u32, i64)>,
    /// Step matches of every sequence slot the event touches, back to back, and per slot
    /// (slot, start, len) into it.
    scratch_seq: Vec<bool>,
    scratch_seq_slots: Vec<(u32, usize, usize)>,
    /// The rules an event may match.
    scratch_rules: Vec<u32>,
    /// The local calendar facts of the last minute seen: events come in time order, so most
    /// events reuse them.
    local_cache: (Millis, Local),
    /// When set, a plain-words account of everything that happens to this subscriber.
    pub trace: Option<(Msisdn, Vec<String>)>,
    /// Daily rule times: (next due, local minute of day). Started from the input's first event
    /// time, the same for every shard, so every shard count ticks alike.
    ticks: Vec<(Millis, u32)>,
    ticks_started: bool,
    /// The would-be contacts of shadow rules, per subscriber (see [`ShadowContacts`]).
    shadow_contacts: ShadowContacts,
    /// A checkpoint this shard is copying its subscribers into.
    snapshot: Option<SnapJob>,
}

/// A checkpoint being taken by one shard: where the background pass is, what is encoded and not
/// yet sent, and where it goes.
struct SnapJob {
    id: u64,
    cursor: u32,
    enc: crate::codec::Enc,
    count: u32,
    ticks: (Vec<(Millis, u32)>, bool),
    to: std::sync::mpsc::Sender<crate::state::checkpoint::Part>,
}

/// Encoded records sent to the writer in slices of about this many bytes. Small: a fresh
/// buffer's pages are faulted in as it fills, and 4 MiB of them cost a pause of several ms.
const SNAP_CHUNK: usize = 256 << 10;

/// Counters a shard keeps for the run summary.
#[derive(Default, Clone, Debug)]
pub struct ShardStats {
    pub timers_armed: u64,
    pub timers_cancelled: u64,
    pub timers_fired: u64,
    pub rechecks_failed: u64,
    pub deferred: u64,
    /// Sampled per-event processing times in nanoseconds (`EngineOptions::latency_sample`).
    pub latency_ns: Vec<u32>,
    /// The longest a checkpoint held this shard between two batches (copying a slice of its
    /// state), and the total, in nanoseconds.
    pub snapshot_pause_max_ns: u64,
    pub snapshot_pause_total_ns: u64,
    /// Every such pause, in microseconds (at most a million kept), for percentiles.
    pub snapshot_pauses_us: Vec<u32>,
    /// The longest a checkpoint still in progress was finished at once (a new one beginning at
    /// the end of the input), in nanoseconds.
    pub snapshot_finish_max_ns: u64,
}

impl ShardStats {
    /// Adds another shard's figures to these.
    pub fn absorb(&mut self, o: ShardStats) {
        self.timers_armed += o.timers_armed;
        self.timers_cancelled += o.timers_cancelled;
        self.timers_fired += o.timers_fired;
        self.rechecks_failed += o.rechecks_failed;
        self.deferred += o.deferred;
        self.latency_ns.extend(o.latency_ns);
        self.snapshot_pause_max_ns = self.snapshot_pause_max_ns.max(o.snapshot_pause_max_ns);
        self.snapshot_pause_total_ns += o.snapshot_pause_total_ns;
        self.snapshot_pauses_us.extend(o.snapshot_pauses_us);
        self.snapshot_finish_max_ns = self.snapshot_finish_max_ns.max(o.snapshot_finish_max_ns);
    }

    /// Time spent on a checkpoint between two batches.
    pub fn snapshot_pause(&mut self, took: std::time::Duration) {
        let ns = took.as_nanos() as u64;
        self.snapshot_pause_max_ns = self.snapshot_pause_max_ns.max(ns);
        self.snapshot_pause_total_ns += ns;
        if self.snapshot_pauses_us.len() < 1_000_000 {
            self.snapshot_pauses_us.push((ns / 1000).min(u64::from(u32::MAX)) as u32);
        }
    }
}

impl Shard {
    pub fn new(
        rules: Arc<RuleSet>,
        refdata: Arc<RefData>,
        policy: Arc<ContactPolicy>,
        subscribers: Subscribers,
        offset: chrono::FixedOffset,
    ) -> Shard {
        let mut subs = SubTable::new(subscribers.profiles);
        subs.unknown.cap = subscribers.unknown_cap.unwrap_or(crate::refdata::DEFAULT_UNKNOWN);
        Shard {
            rules,
            refdata,
            policy,
            subs,
            names: subscribers.names,
            timers: BTreeSet::new(),
            offset,
            scratch_aggs: Vec::new(),
            scratch_seq: Vec::new(),
            scratch_seq_slots: Vec::new(),
            scratch_rules: Vec::new(),
            local_cache: (Millis::MIN, Local::at(0, offset)),
            trace: None,
            ticks: Vec::new(),
            ticks_started: false,
            shadow_contacts: ShadowContacts::new(),
            snapshot: None,
        }
    }

    /// Schedules the daily rules' first ticks after `origin`, the input's first event time.
    pub fn start_ticks(&mut self, origin: Millis) {
        if self.ticks_started {
            return;
        }
        self.ticks_started = true;
        for m in schedule_minutes(&self.rules) {
            self.ticks.push((next_daily(m, origin, self.offset), m));
        }
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    fn tracing(&self, m: Msisdn) -> bool {
        self.trace.as_ref().is_some_and(|(t, _)| *t == m)
    }

    fn note(&mut self, m: Msisdn, line: impl FnOnce() -> String) {
        if let Some((t, lines)) = &mut self.trace {
            if *t == m {
                lines.push(line());
            }
        }
    }

    /// Processes one event at input position `pos`, appending decisions to `out`.
    pub fn process(&mut self, pos: u64, ev: &Event, out: &mut Vec<Decision>, stats: &mut ShardStats) {
        let kind = ev.kind();
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let offset = self.offset;
        let tracing = self.tracing(ev.msisdn);
        if tracing {
            let at = format_ts(ev.ts, offset);
            self.note(ev.msisdn, || format!("{at}  {kind} event {}{}", ev.id, describe_event(ev)));
        }
        if matches!(ev.body, Body::Profile(_)) && self.names.needs_compaction() {
            self.snapshot_finish();
            self.names.compact(self.subs.iter_mut().flat_map(|e| [&mut e.sub.customer_id, &mut e.sub.account_id]));
        }
        let mut entry = self.subs.get_or_insert(ev.msisdn, || Profile::unknown(ev.msisdn));
        let names = &mut self.names;

        // 1. Facts the event states about the subscriber.
        let st = &mut entry.state;
        st.begin(ev.ts, ev.balance_fen());
        match &ev.body {
            Body::Profile(p) => {
                for c in &p.set {
                    entry.sub.apply(c, names);
                }
                for f in &p.unset {
                    entry.sub.unset(*f, names);
                }
                entry.sub.set_known();
            }
            Body::Topup(t) => st.record_topup(ev.ts, t.amount_fen),
            Body::Ivr(i) => st.record_ivr(ev.ts, i.step, i.node.as_deref().map(Box::from)),
            Body::Location(l) => {
                let cell = (l.trigger != LocTrigger::Detach).then_some(&*l.cell);
                st.move_to(cell, ev.ts, &refdata);
                st.set_country(l.country.as_deref().filter(|c| *c != "CN").map(Box::from));
            }
            Body::Usage(u) => {
                st.record_usage(ev.ts);
                if let Some(c) = &u.cell {
                    st.move_to(Some(c), ev.ts, &refdata);
                }
            }
            Body::Crm(_) | Body::Outcome(_) => {}
        }

        // 2. Windows and sequences: decide with the state read-only, then apply.
        let minute = ev.ts.div_euclid(MINUTE);
        if self.local_cache.0 != minute {
            self.local_cache = (minute, Local::at(ev.ts, offset));
        }
        let local = self.local_cache.1;
        self.scratch_aggs.clear();
        self.scratch_seq.clear();
        self.scratch_seq_slots.clear();
        {
            let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, &self.names, offset);
            for &slot in &rules.aggs_by_kind[kind as usize] {
                let def = &rules.aggs[slot as usize];
                if def.filter.as_ref().is_none_or(|f| cx.eval_bool(f)) {
                    let amount = match def.value {
                        None => 1,
                        Some(field) => match field.read(&cx) {
                            crate::rules::expr::Value::Int(n) => n,
                            _ => 0,
                        },
                    };
                    self.scratch_aggs.push((slot, amount));
                }
            }
            for &slot in &rules.seqs_by_kind[kind as usize] {
                let def = &rules.seqs[slot as usize];
                let start = self.scratch_seq.len();
                for (k, f) in &def.steps {
                    self.scratch_seq.push(*k == kind && f.as_ref().is_none_or(|f| cx.eval_bool(f)));
                }
                if self.scratch_seq[start..].iter().any(|m| *m) {
                    self.scratch_seq_slots.push((slot, start, def.steps.len()));
                } else {
                    self.scratch_seq.truncate(start);
                }
            }
        }
        let st = &mut entry.state;
        for &(slot, amount) in &self.scratch_aggs {
            let def = &rules.aggs[slot as usize];
            st.agg_add(slot, ev.ts, amount, def.bucket, def.window);
        }
        for &(slot, start, len) in &self.scratch_seq_slots {
            st.seq_step(slot, &self.scratch_seq[start..start + len], ev.ts, rules.seqs[slot as usize].within);
        }

        // 3. Cancel absence timers this event answers.
        let mut trace = Vec::new();
        if rules.cancel_kinds.contains(kind) && !entry.state.timers().is_empty() {
            let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, &self.names, offset);
            let cancel: Vec<usize> = entry
                .state
                .timers()
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    let Some(def) = rules.rules[t.rule as usize].timer.as_ref() else { return false };
                    t.deferred.is_none()
                        && def.cancel_on.contains(kind)
                        && def.cancel_if.as_ref().is_none_or(|c| cx.eval_bool(c))
                        && t.due > ev.ts
                })
                .map(|(i, _)| i)
                .collect();
            for i in cancel.into_iter().rev() {
                let t = entry.state.timers_mut().remove(i);
                self.timers.remove(&t.index_key(ev.msisdn.raw()));
                stats.timers_cancelled += 1;
                if tracing {
                    trace.push(format!(
                        "  rule {}: its pending timer is cancelled by this event",
                        rules.rules[t.rule as usize].name
                    ));
                }
            }
        }

        // 4. Rules.
        let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, &self.names, offset);
        let trigger = || TriggerRef { kind: kind.as_str(), id: ev.id.as_str().into(), ts: ev.ts };
        let mut arm: Vec<PendingTimer> = Vec::new();
        let mut cands: Vec<Candidate> = Vec::new();
        rules.by_kind[kind as usize].visit(ev, &mut self.scratch_rules, |ri| {
            let rule = &rules.rules[ri as usize];
            if !rule.enabled || !cx.eval_bool(&rule.condition) {
                return;
            }
            match &rule.timer {
                Some(t) => {
                    // One pending timer per rule and subscriber: a second trigger while the
                    // first waits does not restart the clock.
                    let waiting = |p: &PendingTimer| p.rule == ri && p.deferred.is_none();
                    if cx.state.timers().iter().any(waiting) || arm.iter().any(waiting) {
                        if tracing {
                            trace.push(format!("  rule {} matched; its timer is already running", rule.name));
                        }
                        return;
                    }
                    if tracing {
                        let due = format_ts(ev.ts.saturating_add(t.after), offset);
                        trace.push(format!("  rule {} matched: timer set for {due}", rule.name));
                    }
                    let (text, script) = render(rule, &cx);
                    arm.push(PendingTimer {
                        due: ev.ts.saturating_add(t.after),
                        rule: ri,
                        trigger: trigger(),
                        armed_at: pos,
                        text,
                        script,
                        deferred: None,
                    });
                }
                None => {
                    if tracing {
                        trace.push(format!("  rule {} matched", rule.name));
                    }
                    let (text, script) = render(rule, &cx);
                    cands.push(Candidate {
                        rule: ri,
                        ts: ev.ts,
                        key: OrderKey { pos, phase: 1, due: 0, msisdn: 0, rule: ri },
                        trigger: trigger(),
                        due: None,
                        text,
                        script,
                        deferred: None,
                    });
                }
            }
        });
        for t in arm {
            self.timers.insert(t.index_key(ev.msisdn.raw()));
            entry.state.timers_mut().push(t);
            stats.timers_armed += 1;
        }
        let first = out.len();
        let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
        self.policy.decide(cx, cands, entry.sub, entry.state, out);
        hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
        if tracing {
            trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            if let Some((_, lines)) = &mut self.trace {
                lines.append(&mut trace);
            }
        }
        // Past the bound on unknown subscribers, the one seen least recently is forgotten.
        self.subs.forget_unknown(ev.ts, self.policy.keep());
    }

    /// Fires every timer (and daily tick) due at or before `wm`. `place(due, not_before)` gives
    /// the input position a timer logically fires just before (see [`OrderKey`]).
    pub fn fire_timers(
        &mut self,
        wm: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        loop {
            let next_timer = self.timers.first().map(|k| k.0).filter(|t| *t <= wm);
            let next_tick = self.ticks.iter().map(|t| t.0).min().filter(|t| *t <= wm);
            match (next_timer, next_tick) {
                (_, Some(tick)) if next_timer.is_none_or(|t| tick < t) => {
                    self.tick(tick, place, out, stats);
                    continue;
                }
                (Some(_), _) => {}
                _ => break,
            }
            let Some((due, raw, rule_idx, armed_at, is_deferred)) = self.timers.pop_first() else { break };
            let rules = Arc::clone(&self.rules);
            let refdata = Arc::clone(&self.refdata);
            let offset = self.offset;
            let msisdn = Msisdn::from_raw(raw);
            let tracing = self.tracing(msisdn);
            let Some(mut entry) = self.subs.get_mut(msisdn) else { continue };
            let Some(i) = entry
                .state
                .timers()
                .iter()
                .position(|t| t.index_key(raw) == (due, raw, rule_idx, armed_at, is_deferred))
            else {
                continue;
            };
            let timer = entry.state.timers_mut().remove(i);
            let rule = &rules.rules[rule_idx as usize];
            let mut trace = Vec::new();
            if tracing {
                let what = if is_deferred { "the quiet-hours hold ends" } else { "timer fires" };
                trace.push(format!("{}  rule {}: {what}", format_ts(due, offset), rule.name));
            }
            if timer.deferred.is_none() {
                stats.timers_fired += 1;
                let cx = entry.ctx(None, due, Local::at(due, offset), &refdata, &self.names, offset);
                if let Some(re) = rule.timer.as_ref().and_then(|t| t.recheck.as_ref()) {
                    if !cx.eval_bool(re) {
                        stats.rechecks_failed += 1;
                        if tracing {
                            trace.push("  the recheck no longer holds: no contact".to_string());
                            if let Some((_, lines)) = &mut self.trace {
                                lines.append(&mut trace);
                            }
                        }
                        continue;
                    }
                }
            }
            let pos = place(due, armed_at + 1);
            let cand = Candidate {
                rule: rule_idx,
                ts: due,
                key: OrderKey { pos, phase: 0, due, msisdn: raw, rule: rule_idx },
                due: if timer.deferred.is_some() { None } else { Some(due) },
                trigger: timer.trigger,
                text: timer.text,
                script: timer.script,
                deferred: timer.deferred,
            };
            let first = out.len();
            let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
            self.policy.decide(cx, vec![cand], entry.sub, entry.state, out);
            hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
            if tracing {
                trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
                if let Some((_, lines)) = &mut self.trace {
                    lines.append(&mut trace);
                }
            }
        }
    }
}

impl Shard {
    /// A daily tick at `at`: every scheduled rule of that minute, for every subscriber.
    fn tick(
        &mut self,
        at: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        let minutes: Vec<u32> = self.ticks.iter().filter(|t| t.0 == at).map(|t| t.1).collect();
        for t in self.ticks.iter_mut().filter(|t| t.0 == at) {
            t.0 += DAY;
        }
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let offset = self.offset;
        let local = Local::at(at, offset);
        // Parts of a condition that are the same for everyone ("the day before the cut-over",
        // "a festival today") are checked once here; a rule they rule out visits no one.
        let (mut sub, mut state) = (Profile::unknown(Msisdn::from_raw(0)), SubState::default());
        let nobody = Entry { sub: &mut sub, state: &mut state };
        let gate = nobody.ctx(None, at, local, &refdata, &self.names, offset);
        let due: Vec<u32> = rules
            .scheduled
            .iter()
            .copied()
            .filter(|r| {
                let rule = &rules.rules[*r as usize];
                rule.schedule.is_some_and(|m| minutes.contains(&m))
                    && rule.condition.global_parts().iter().all(|p| gate.eval_bool(p))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        // Birthday greetings only: whoever's birthday is not today is passed over on a look at
        // the record (a tenth of a replay went on evaluating them for everyone).
        let birthdays_only = due.iter().all(|r| rules.rules[*r as usize].condition.needs_birthday());
        let pos = place(at, 0);
        let label = format!("{:02}:{:02}", local.hour, local.minute);
        let trace_m = self.trace.as_ref().map(|t| t.0);
        let mut trace = Vec::new();
        // Every subscriber is read; only those with a contact to decide are changed (so a
        // checkpoint in progress copies just those first, see `SubTable::at`).
        for i in 0..self.subs.len() as u32 {
            let entry = self.subs.read(i);
            if birthdays_only && !gate.birthday_today(entry.sub) {
                continue;
            }
            let m = entry.sub.msisdn;
            let mut cands = Vec::new();
            {
                let cx = entry.ctx(None, at, local, &refdata, &self.names, offset);
                for &ri in &due {
                    let rule = &rules.rules[ri as usize];
                    if !rule.enabled || !cx.eval_bool(&rule.condition) {
                        continue;
                    }
                    let (text, script) = render(rule, &cx);
                    cands.push(Candidate {
                        rule: ri,
                        ts: at,
                        key: OrderKey { pos, phase: 0, due: at, msisdn: m.raw(), rule: ri },
                        trigger: TriggerRef { kind: "schedule", id: format!("{label}@{}", local.date).into(), ts: at },
                        due: None,
                        text,
                        script,
                        deferred: None,
                    });
                }
            }
            if cands.is_empty() {
                continue;
            }
            let mut entry = self.subs.at(i);
            let first = out.len();
            let names: Vec<String> = cands.iter().map(|c| rules.rules[c.rule as usize].name.to_string()).collect();
            let cx = &mut DecideCtx { refdata: &refdata, shadow: &mut self.shadow_contacts };
            self.policy.decide(cx, cands, entry.sub, entry.state, out);
            hold_deferred(&out[first..], pos, &mut entry, &mut self.timers, stats);
            if trace_m == Some(m) {
                trace.push(format!("{}  daily rules at {label}", format_ts(at, offset)));
                trace.extend(names.iter().map(|n| format!("  rule {n} matched")));
                trace.extend(out[first..].iter().map(|d| explain_line(d, offset)));
            }
        }
        if let Some((_, lines)) = &mut self.trace {
            lines.append(&mut trace);
        }
    }
}

/// Holds every contact of `decided` (one trigger's decisions, at input position `pos`) that
/// policy deferred to the end of quiet hours: a timer of the subscriber, in their state and in
/// the shard's index, that brings it back to policy as the same action when they end.
fn hold_deferred(
    decided: &[Decision],
    pos: u64,
    entry: &mut Entry,
    index: &mut BTreeSet<TimerKey>,
    stats: &mut ShardStats,
) {
    let raw = entry.sub.msisdn.raw();
    for d in decided {
        let Outcome::Deferred(until) = d.outcome else { continue };
        let t = PendingTimer {
            due: until,
            rule: d.rule,
            trigger: d.trigger.clone(),
            armed_at: pos,
            text: d.text.clone(),
            script: d.script.clone(),
            deferred: Some(Deferred { id: d.id.clone(), expires: d.expires }),
        };
        index.insert(t.index_key(raw));
        entry.state.timers_mut().push(t);
        // The run's count of deferrals is the live rules' (a shadow one is in its decision).
        if !d.shadow {
            stats.deferred += 1;
        }
    }
}

fn render(rule: &Rule, cx: &Ctx) -> (Option<String>, Option<String>) {
    (rule.template.as_ref().map(|t| t.render(cx)), rule.script.as_ref().map(|t| t.render(cx)))
}

fn describe_event(ev: &Event) -> String {
    match &ev.body {
        Body::Usage(u) => format!(": {} {} {}", u.service, u.direction, u.scope),
        Body::Topup(t) => format!(": {} fen by {}", t.amount_fen, t.channel),
        Body::Ivr(i) => format!(": {} {}", i.step, i.node.as_deref().unwrap_or("")),
        Body::Location(l) => format!(": {} in cell {}", l.trigger, l.cell),
        Body::Crm(c) => format!(": {}", c.event),
        Body::Profile(p) => format!(": {} change(s)", p.set.len() + p.unset.len()),
        Body::Outcome(o) => format!(": {} {} of {}", o.channel, o.status, o.action_id),
    }
}

/// One decision in plain words, for `explain`.
pub fn explain_line(d: &Decision, offset: chrono::FixedOffset) -> String {
    let what = match d.channel {
        Channel::Sms => "SMS",
        Channel::Call => "call task",
        Channel::Ivr => "IVR offer",
    };
    let body = d.text.as_deref().or(d.script.as_deref()).unwrap_or("");
    if d.shadow && d.outcome == Outcome::Sent {
        return format!("    -> {what} of shadow rule {} would be sent (not sent: mode shadow): {body}", d.rule_name);
    }
    let what = if d.shadow { format!("{what} (shadow)") } else { what.to_string() };
    match d.outcome {
        Outcome::Sent => format!("    -> {what} sent by rule {} ({}): {body}", d.rule_name, d.id),
        Outcome::Suppressed(r) => {
            format!(
                "    -> {what} of rule {} not sent: {} — {}",
                d.rule_name,
                r.as_str(),
                d.detail.as_deref().unwrap_or("")
            )
        }
        Outcome::Deferred(t) => format!(
            "    -> {what} of rule {} held until {}: {}",
            d.rule_name,
            format_ts(t, offset),
            d.detail.as_deref().unwrap_or("")
        ),
    }
}

impl Shard {
    /// One subscriber as the engine holds them now, for `GET /v1/explain/{msisdn}`: the record,
    /// the state rules read (balance, place, windows), pending timers and the contact history
    /// caps count. The number itself is left to the caller (masked).
    pub fn describe(&mut self, m: Msisdn, now: Millis) -> serde_json::Value {
        use serde_json::json;
        let offset = self.offset;
        let ts = |t: Option<Millis>| t.map(|t| format_ts(t, offset));
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let Some(e) = self.subs.get_mut(m) else {
            return json!({ "known": false, "state": null });
        };
        let (sub, st) = (&*e.sub, &*e.state);
        let windows: Vec<serde_json::Value> = rules
            .aggs
            .iter()
            .enumerate()
            .map(|(slot, a)| {
                json!({
                    "kind": a.kind.as_str(),
                    "window": crate::time::format_duration(a.window),
                    "value": st.agg_value_window(slot as u32, now, a.bucket, a.window),
                })
            })
            .filter(|w| w["value"] != 0)
            .collect();
        let timers: Vec<serde_json::Value> = st
            .timers()
            .iter()
            .map(|t| {
                json!({
                    "rule": rules.rules.get(t.rule as usize).map(|r| r.name.to_string()),
                    "due": format_ts(t.due, offset),
                    "deferred_contact": t.deferred.is_some(),
                })
            })
            .collect();
        let contacts: Vec<serde_json::Value> = st
            .contacts()
            .recent
            .iter()
            .map(|c| {
                json!({
                    "at": format_ts(c.ts, offset),
                    "rule": rules.rules.get(c.rule as usize).map(|r| r.name.to_string()),
                    "campaign": rules.campaigns.get(c.campaign as usize).map(|p| p.name.to_string()),
                    "channel": c.channel.as_str(),
                    "transactional": c.transactional,
                })
            })
            .collect();
        json!({
            "known": sub.known(),
            "profile": {
                "brand": sub.brand.as_str(),
                "tier": sub.tier.as_str(),
                "status": sub.status.as_str(),
                "dnd": sub.dnd.any(),
            },
            "state": {
                "balance_fen": st.balance(),
                "last_event_at": ts(st.last_event_at()),
                "last_usage_at": ts(st.last_usage_at()),
                "last_topup": st.last_topup().map(|(t, fen)| json!({"at": format_ts(t, offset), "amount_fen": fen})),
                "cell": st.cell_id_str(&refdata),
                "cell_since": ts(st.cell_since()),
                "roaming_country": st.country(),
                "ivr_last_node": st.ivr_last_node(false),
                "windows": windows,
            },
            "timers": timers,
            "contacts": contacts,
        })
    }
}

/// The local minutes of day at which the set's daily rules run, each once, in order.
fn schedule_minutes(rules: &RuleSet) -> Vec<u32> {
    let mut minutes: Vec<u32> = rules.scheduled.iter().filter_map(|r| rules.rules[*r as usize].schedule).collect();
    minutes.sort_unstable();
    minutes.dedup();
    minutes
}

/// The first time at or after `t` that is `minute` minutes into a local day.
fn next_daily(minute: u32, t: Millis, offset: chrono::FixedOffset) -> Millis {
    let off = i64::from(offset.local_minus_utc()) * 1000;
    let at = (t + off).div_euclid(DAY) * DAY - off + i64::from(minute) * MINUTE;
    if at < t { at + DAY } else { at }
}

impl Shard {
    /// Swaps in a new rule set between two batches (hot reload), carrying every subscriber's
    /// state over: rules and campaigns are matched by name, windows and sequences by their
    /// definition; what is gone is dropped (timers) or retired (contact history keeps counting
    /// toward caps across all touchpoints). `now` is the watermark: new daily rules start ticking
    /// after it.
    pub fn reload(&mut self, new: Arc<RuleSet>, now: Millis) {
        let remap = self.rules.shape().remap_to(&new.shape());
        self.snapshot_finish();
        self.timers.clear();
        for e in self.subs.iter_mut() {
            e.state.remap(&remap);
            let raw = e.sub.msisdn.raw();
            for t in e.state.timers() {
                self.timers.insert(t.index_key(raw));
            }
        }
        self.shadow_contacts.remap(&remap, &new);
        self.policy = Arc::new(self.policy.with_rules(Arc::clone(&new)));
        self.rules = new;
        let old_ticks = std::mem::take(&mut self.ticks);
        self.set_ticks(old_ticks, self.ticks_started, now);
    }

    /// Daily rules: times still scheduled keep their next tick; new ones start after `now`.
    fn set_ticks(&mut self, old: Vec<(Millis, u32)>, started: bool, now: Millis) {
        self.ticks_started = started;
        if started {
            self.ticks = schedule_minutes(&self.rules)
                .into_iter()
                .map(|m| old.iter().copied().find(|t| t.1 == m).unwrap_or((next_daily(m, now + 1, self.offset), m)))
                .collect();
        }
    }
}

impl Shard {
    /// Starts copying this shard's state into checkpoint `id` (at a batch boundary): the
    /// subscribers present now, as they are now. The copy proceeds in [`Shard::snapshot_step`]
    /// slices; a subscriber a later batch changes first is copied just before it changes.
    ///
    /// Returns the time spent finishing a checkpoint still in progress first (the last one of a
    /// run, taken at the end of the input whether or not the one before is done).
    pub fn snapshot_begin(
        &mut self,
        id: u64,
        to: std::sync::mpsc::Sender<crate::state::checkpoint::Part>,
    ) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        self.snapshot_finish();
        let finishing = t0.elapsed();
        let upto = self.subs.len() as u32;
        self.subs.snap =
            Some(Box::new(SnapMarks { upto, copied: vec![0; (upto as usize).div_ceil(64)], saved: Vec::new() }));
        self.snapshot = Some(SnapJob {
            id,
            cursor: 0,
            enc: Default::default(),
            count: 0,
            ticks: (self.ticks.clone(), self.ticks_started),
            to,
        });
        finishing
    }

    /// A checkpoint is being copied.
    pub fn snapshotting(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Copies subscribers into the checkpoint in progress for at most about `budget`; sends
    /// the shard's last slice when done. Returns whether a checkpoint is still in progress.
    pub fn snapshot_step(&mut self, budget: std::time::Duration) -> bool {
        let Some(job) = self.snapshot.as_mut() else { return false };
        let Some(marks) = self.subs.snap.as_mut() else { return false };
        let t0 = std::time::Instant::now();
        let encode = |job: &mut SnapJob, p: &Profile, st: &SubState| {
            if job.enc.buf.is_empty() {
                job.enc.u32(0);
            }
            p.encode(&mut job.enc, &self.names);
            st.encode(&mut job.enc, &self.refdata);
            job.count += 1;
            if job.enc.buf.len() >= SNAP_CHUNK {
                send_slice(job);
            }
        };
        // Copies a batch made first, then the background pass; both within the budget (a
        // subscriber is saved once at most, so the saved ones cannot pile up past the table).
        let mut n = 0u32;
        while let Some((p, st)) = marks.saved.pop() {
            encode(job, &p, &st);
            n += 1;
            if n.is_multiple_of(64) && t0.elapsed() >= budget {
                return true;
            }
        }
        while job.cursor < marks.upto {
            let i = job.cursor;
            job.cursor += 1;
            if marks.is_copied(i) {
                continue;
            }
            marks.mark(i);
            encode(job, &self.subs.profiles[i as usize], &self.subs.states[i as usize]);
            n += 1;
            if n.is_multiple_of(64) && t0.elapsed() >= budget {
                return true;
            }
        }
        // Every subscriber of the boundary is copied.
        send_slice(job);
        let _ = job.to.send(crate::state::checkpoint::Part::ShardDone { id: job.id, ticks: job.ticks.clone() });
        self.subs.snap = None;
        self.snapshot = None;
        false
    }

    /// Finishes the checkpoint in progress at once (before a sweep over every subscriber, and
    /// at the end of the input).
    pub fn snapshot_finish(&mut self) {
        while self.snapshot_step(std::time::Duration::MAX) {}
    }

    /// Puts a subscriber back as a checkpoint holds it, replacing what the reference data
    /// loaded; `remap` carries state taken under another rule set over to this one.
    pub fn restore_subscriber(&mut self, p: Profile, st: SubState, remap: Option<&crate::state::Remap>) {
        let m = p.msisdn;
        let e = self.subs.get_or_insert(m, || p.clone());
        *e.sub = p;
        *e.state = st;
        if let Some(r) = remap {
            e.state.remap(r);
        }
        for t in e.state.timers() {
            self.timers.insert(t.index_key(m.raw()));
        }
    }

    /// Puts the daily ticks back as a checkpoint holds them (rules added since start ticking
    /// after `now`).
    pub fn restore_ticks(&mut self, ticks: Vec<(Millis, u32)>, started: bool, now: Millis) {
        self.set_ticks(ticks, started, now);
    }

    /// The strings of this shard's records, to decode checkpointed records into.
    pub fn names_mut(&mut self) -> &mut Names {
        &mut self.names
    }
}

fn send_slice(job: &mut SnapJob) {
    if job.enc.buf.is_empty() {
        return;
    }
    let mut bytes = std::mem::replace(&mut job.enc.buf, Vec::with_capacity(SNAP_CHUNK + (16 << 10)));
    bytes[..4].copy_from_slice(&job.count.to_le_bytes());
    job.count = 0;
    let _ = job.to.send(crate::state::checkpoint::Part::Records { id: job.id, bytes });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_table_grows_keeps_the_last_duplicate_and_finds_everyone() {
        let m = |i: u64| Msisdn::from_raw(13_800_000_000 + i * 7);
        let mut loaded: Vec<Profile> = (0..100).map(|i| Profile::unknown(m(i))).collect();
        let mut again = Profile::unknown(m(5));
        again.arpu_fen = 42;
        loaded.push(again);
        let mut t = SubTable::new(loaded);
        assert_eq!(t.len(), 100);
        assert_eq!(t.get_mut(m(5)).map(|e| e.sub.arpu_fen), Some(42), "a later record replaces an earlier one");
        // Past two blocks of added entries: the loaded ones never move.
        let n = 100 + 2 * BLOCK as u64 + 7;
        let first = &t.profiles[0] as *const Profile;
        for i in 100..n {
            t.get_or_insert(m(i), || Profile::unknown(m(i)));
            if let Some(e) = t.get_mut(m(i)) {
                e.state.begin(0, Some(i as i64));
            }
        }
        assert_eq!(t.len(), n as usize);
        assert!(std::ptr::eq(first, &t.profiles[0]), "the loaded records stay where they are");
        assert!((0..n).all(|i| t.get_mut(m(i)).is_some_and(|e| e.sub.msisdn == m(i))));
        assert!((100..n).all(|i| t.get_mut(m(i)).is_some_and(|e| e.state.balance() == Some(i as i64))));
        assert!(t.get_mut(m(n)).is_none());
        assert_eq!(t.iter_mut().count(), n as usize);
        assert!(t.iter_mut().all(|e| e.state.balance().is_none_or(|b| e.sub.msisdn == m(b as u64))));
        t.prefetch_slot(m(9_999));
        t.prefetch_entry(m(9_999));
    }
}
