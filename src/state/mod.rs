//! Per-subscriber state: what rules need to remember between events.
//!
//! Each shard owns the states of its subscribers outright, so nothing here locks. Windows are
//! sparse bucket lists (a subscriber who made three calls has three entries, not thirty days
//! of zeros), sequences keep one start time per step, and timers live with the subscriber so
//! they travel with its state (checkpoints, explain).

use crate::event::IvrStep;
use crate::refdata::{Cell, CellId, RefData, TagId};
use crate::util::Millis;
use std::collections::VecDeque;

/// Where the subscriber is: a cell of the reference data, or one it does not know.
#[derive(Clone, Debug, PartialEq)]
pub enum CellRef {
    Known(CellId),
    Unknown(Box<str>),
}

/// The event that caused a decision, as actions report it.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRef {
    /// The event kind (`usage`, ...), or `schedule` for a daily rule.
    pub kind: &'static str,
    pub id: std::sync::Arc<str>,
    pub ts: Millis,
}

/// A rule's pending timer (a delay or an absence check).
#[derive(Clone, Debug)]
pub struct PendingTimer {
    pub due: Millis,
    /// Index of the rule in the rule set that armed it.
    pub rule: u32,
    pub trigger: TriggerRef,
    /// Input position of the event that armed it; a timer never fires before that point.
    pub armed_at: u64,
    /// The message, written when the rule fired (it may quote the triggering event).
    pub text: Option<String>,
    pub script: Option<String>,
    /// A contact held for the end of quiet hours (not a rule's own timer): its action id and
    /// expiry.
    pub deferred: Option<Deferred>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deferred {
    pub id: String,
    pub expires: Option<Millis>,
}

impl PendingTimer {
    /// The key of this timer in the shard's due-time index.
    pub fn index_key(&self, msisdn: u64) -> (Millis, u64, u32, u64, bool) {
        (self.due, msisdn, self.rule, self.armed_at, self.deferred.is_some())
    }
}

/// One IVR step, kept for personalisation and explain.
#[derive(Clone, Debug)]
pub struct IvrStepRec {
    pub ts: Millis,
    pub step: IvrStep,
    pub node: Option<Box<str>>,
}

/// One bucket of one window: `sum` of the events in bucket `idx` (time / bucket width).
#[derive(Clone, Copy, Debug)]
struct AggBucket {
    slot: u32,
    idx: i64,
    sum: i64,
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

#[derive(Clone, Debug, Default)]
pub struct SubState {
    /// Events seen for this subscriber; identifies "the current event" for `entered` and `seq`.
    pub events_seen: u32,
    pub last_event_at: Option<Millis>,
    pub balance: Option<i64>,
    /// The balance before the current event.
    pub prev_balance: Option<i64>,
    /// (time, amount) of the last top-up.
    pub last_topup: Option<(Millis, i64)>,
    pub cell: Option<CellRef>,
    pub cell_since: Option<Millis>,
    pub prev_cell: Option<CellId>,
    cell_changed_at: u32,
    /// Tags of the current cell with the time the subscriber entered cells carrying each.
    zones: Vec<(TagId, Millis)>,
    /// Windowed aggregates by slot: sorted (bucket index, sum).
    /// Every window's non-empty buckets in one vector, sorted by (slot, bucket): one
    /// allocation per subscriber, not one per window.
    aggs: Vec<AggBucket>,
    seqs: Vec<SeqState>,
    pub recent_ivr: VecDeque<IvrStepRec>,
    pub timers: Vec<PendingTimer>,
    /// Decided contacts, as far back as the caps look.
    pub contacts: crate::policy::ContactLog,
    /// The last distinct known cells the subscriber was seen in, with the last time seen
    /// (most recent last), for `visited()`.
    recent_cells: Vec<(CellId, Millis)>,
    /// Time of the last usage record (calls, SMS, data), for silence checks.
    pub last_usage_at: Option<Millis>,
    /// The visited country while roaming abroad (ISO 3166 alpha-2), from location events.
    pub country: Option<Box<str>>,
}

/// How many distinct recent cells a subscriber's state remembers for `visited()`.
pub const RECENT_CELLS: usize = 16;

impl SubState {
    /// Starts processing one event: counters and balance.
    pub fn begin(&mut self, ts: Millis, balance: Option<i64>) {
        self.events_seen = self.events_seen.wrapping_add(1);
        self.last_event_at = Some(self.last_event_at.map_or(ts, |t| t.max(ts)));
        self.prev_balance = self.balance;
        if balance.is_some() {
            self.balance = balance;
        }
    }

    pub fn record_topup(&mut self, ts: Millis, amount: i64) {
        self.last_topup = Some((ts, amount));
    }

    pub fn record_ivr(&mut self, ts: Millis, step: IvrStep, node: Option<Box<str>>) {
        if self.recent_ivr.len() == IVR_RECENT {
            self.recent_ivr.pop_front();
        }
        self.recent_ivr.push_back(IvrStepRec { ts, step, node });
    }

    /// Moves the subscriber to a cell (`None`: detached from the network).
    pub fn move_to(&mut self, cell: Option<&str>, now: Millis, refdata: &RefData) {
        let new = cell.map(|c| refdata.cell(c).map_or_else(|| CellRef::Unknown(c.into()), CellRef::Known));
        if let Some(CellRef::Known(id)) = &new {
            self.recent_cells.retain(|(c, _)| c != id);
            if self.recent_cells.len() == RECENT_CELLS {
                self.recent_cells.remove(0);
            }
            self.recent_cells.push((*id, now));
        }
        if new == self.cell {
            return;
        }
        self.prev_cell = match &self.cell {
            Some(CellRef::Known(c)) => Some(*c),
            _ => None,
        };
        let new_tags: &[TagId] = match &new {
            Some(CellRef::Known(c)) => refdata.cells.get(*c as usize).map_or(&[], |c| &c.tags),
            _ => &[],
        };
        // In place, so a move allocates nothing: keep the zones the new cell shares (with
        // the time they were entered), add the ones it starts.
        self.zones.retain(|(z, _)| new_tags.contains(z));
        for t in new_tags {
            if !self.zones.iter().any(|(z, _)| z == t) {
                self.zones.push((*t, now));
            }
        }
        self.cell = new;
        self.cell_since = self.cell.as_ref().map(|_| now);
        self.cell_changed_at = self.events_seen;
    }

    pub fn cell_ref<'r>(&self, refdata: &'r RefData) -> Option<&'r Cell> {
        match &self.cell {
            Some(CellRef::Known(c)) => refdata.cells.get(*c as usize),
            _ => None,
        }
    }

    pub fn cell_id_str<'a>(&'a self, refdata: &'a RefData) -> Option<&'a str> {
        match &self.cell {
            Some(CellRef::Known(c)) => refdata.cells.get(*c as usize).map(|c| &*c.id),
            Some(CellRef::Unknown(s)) => Some(s),
            None => None,
        }
    }

    fn moved_now(&self) -> bool {
        self.cell_changed_at == self.events_seen && self.events_seen != 0
    }

    fn prev_tags<'r>(&self, refdata: &'r RefData) -> &'r [TagId] {
        self.prev_cell.and_then(|c| refdata.cells.get(c as usize)).map_or(&[], |c| &c.tags)
    }

    /// The current event moved the subscriber into cells carrying one of `tags`.
    pub fn entered(&self, tags: &[TagId], refdata: &RefData) -> bool {
        if !self.moved_now() {
            return false;
        }
        let prev = self.prev_tags(refdata);
        tags.iter().any(|t| self.zones.iter().any(|(z, _)| z == t) && prev.binary_search(t).is_err())
    }

    /// The current event moved the subscriber out of cells carrying one of `tags`.
    pub fn left(&self, tags: &[TagId], refdata: &RefData) -> bool {
        if !self.moved_now() {
            return false;
        }
        let prev = self.prev_tags(refdata);
        tags.iter().any(|t| prev.binary_search(t).is_ok() && !self.zones.iter().any(|(z, _)| z == t))
    }

    /// Whether the subscriber was seen in a cell carrying one of `tags` within `window` of `now`.
    pub fn visited(&self, tags: &[TagId], window: i64, now: Millis, refdata: &RefData) -> bool {
        self.recent_cells.iter().any(|(c, seen)| {
            *seen > now - window
                && refdata
                    .cells
                    .get(*c as usize)
                    .is_some_and(|cell| tags.iter().any(|t| cell.tags.binary_search(t).is_ok()))
        })
    }

    /// How long the subscriber has been in cells carrying any of `tags` (0 when not there).
    pub fn dwell(&self, tags: &[TagId], now: Millis) -> i64 {
        self.zones.iter().filter(|(z, _)| tags.contains(z)).map(|(_, since)| (now - since).max(0)).max().unwrap_or(0)
    }

    /// The range of `aggs` holding `slot`'s buckets.
    fn agg_range(&self, slot: u32) -> std::ops::Range<usize> {
        let start = self.aggs.partition_point(|b| b.slot < slot);
        let end = start + self.aggs[start..].partition_point(|b| b.slot == slot);
        start..end
    }

    /// Adds `amount` at `ts` to aggregate `slot`, dropping buckets that left the window.
    pub fn agg_add(&mut self, slot: u32, ts: Millis, amount: i64, bucket: i64, window: i64) {
        let idx = ts.div_euclid(bucket);
        let range = self.agg_range(slot);
        let buckets = &self.aggs[range.clone()];
        match buckets.binary_search_by_key(&idx, |b| b.idx) {
            Ok(i) => self.aggs[range.start + i].sum += amount,
            Err(i) => self.aggs.insert(range.start + i, AggBucket { slot, idx, sum: amount }),
        }
        let range = self.agg_range(slot);
        let newest = self.aggs[range.end - 1].idx;
        // A bucket is dead once its end is at or before the window start of the newest one.
        let oldest_live = (newest * bucket - window).div_euclid(bucket);
        let dead = self.aggs[range.clone()].iter().take_while(|b| b.idx < oldest_live).count();
        if dead > 0 {
            self.aggs.drain(range.start..range.start + dead);
        }
    }

    /// Sum of aggregate `slot` over the window ending at `now`.
    pub fn agg_value_window(&self, slot: u32, now: Millis, bucket: i64, window: i64) -> i64 {
        let lo = now - window;
        self.aggs[self.agg_range(slot)]
            .iter()
            .filter(|b| (b.idx + 1) * bucket > lo && b.idx * bucket <= now)
            .map(|b| b.sum)
            .sum()
    }

    /// Advances sequence `slot` with which of its steps the current event matches.
    pub fn seq_step(&mut self, slot: u32, matches: &[bool], now: Millis, within: i64) {
        let slot = slot as usize;
        if self.seqs.len() <= slot {
            self.seqs.resize_with(slot + 1, SeqState::default);
        }
        let n = matches.len();
        let s = &mut self.seqs[slot];
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
                    s.done_at = self.events_seen;
                } else {
                    s.starts[j] = Some(s.starts[j].map_or(start, |cur| cur.max(start)));
                }
            }
        }
        if matches[0] && n > 1 {
            s.starts[0] = Some(now);
        } else if matches[0] {
            s.done_at = self.events_seen;
        }
    }

    pub fn seq_completed_now(&self, slot: u32) -> bool {
        self.seqs.get(slot as usize).is_some_and(|s| s.done_at == self.events_seen && s.done_at != 0)
    }

    /// How many times in the `window` up to `now` the caller reached an agent at `node`.
    pub fn ivr_agent_at(&self, node: &str, window: i64, now: Millis) -> i64 {
        self.recent_ivr
            .iter()
            .filter(|r| {
                r.step == IvrStep::Agent && r.node.as_deref() == Some(node) && r.ts > now - window && r.ts <= now
            })
            .count() as i64
    }

    /// The menu node of the caller's latest IVR step before the current event.
    pub fn ivr_last_node(&self, current_is_ivr: bool) -> Option<&str> {
        let skip = usize::from(current_is_ivr);
        self.recent_ivr.iter().rev().skip(skip).find_map(|r| r.node.as_deref())
    }

    /// Number of non-empty aggregate buckets held (for memory accounting and explain).
    pub fn agg_buckets(&self) -> usize {
        self.aggs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{DAY, HOUR};

    #[test]
    fn windows_of_several_slots_share_one_vector_and_slide() {
        let mut s = SubState::default();
        let (b1, w1) = (HOUR, 2 * HOUR);
        let (b2, w2) = (DAY, 30 * DAY);
        for h in 0..10 {
            s.agg_add(1, h * HOUR, 1, b1, w1);
            s.agg_add(0, h * HOUR, 5, b2, w2);
        }
        // The 2-hour window keeps only the buckets that can still count; the bucket at the far
        // edge (7h..8h) counts whole, as documented (exact to within one bucket).
        assert_eq!(s.agg_value_window(1, 9 * HOUR, b1, w1), 3);
        assert_eq!(s.agg_value_window(0, 9 * HOUR, b2, w2), 50);
        assert!(s.agg_buckets() <= 4, "{} buckets kept", s.agg_buckets());
        // A late event lands in its own bucket, in order.
        s.agg_add(1, 8 * HOUR + 1, 1, b1, w1);
        assert_eq!(s.agg_value_window(1, 9 * HOUR, b1, w1), 4);
        assert_eq!(s.agg_value_window(2, 9 * HOUR, b1, w1), 0, "an untouched slot is empty");
    }
}
