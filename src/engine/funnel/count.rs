//! The funnel's counting on a shard: dense rows per rule of the shard's rule set for the local
//! day of the event in hand, handed to the write side once per batch.
//!
//! Why rows by rule index and a day held aside: this runs for every event of a throughput-bound
//! engine. An event adds to its rules' rows with an index, no hashing and no allocation; the day
//! is compared once per event and changes once a local day (a late event or a timer of another
//! day goes to a short list of its own). The `triggered` counts are kept by the rules themselves
//! in the shard's scratch ([`crate::rules::eval::Scratch::triggered`]) and folded in here when
//! the day changes and at the end of a batch.

use super::{ACCEPTED, ANSWERED, DELIVERED, MATCHED, REPLIED, Row, STAGES, TRIGGERED};
use crate::contact::Candidate;
use crate::event::{ContactOutcome, OutcomeStatus, SubscriberReply};
use crate::rules::RuleSet;
use crate::time::{DAY, Millis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One shard's counts of one batch: rows by rule index of `rules`, per local day.
pub struct Delta {
    /// The batch they were counted in.
    pub no: u64,
    pub rules: Arc<RuleSet>,
    pub days: Vec<(i64, Vec<Row>)>,
}

/// Where the shards leave their batches' counts for the write side, which takes those of the
/// batches it has written (so a checkpoint holds exactly the counts of its batches).
#[derive(Default)]
pub struct Inbox(Mutex<Vec<Delta>>);

impl Inbox {
    pub fn put(&self, d: Delta) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(d);
    }

    /// The counts of every batch numbered below `written`.
    pub fn take_before(&self, written: u64) -> Vec<Delta> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (done, later): (Vec<Delta>, Vec<Delta>) = held.drain(..).partition(|d| d.no < written);
        *held = later;
        done
    }
}

/// A shard's counter (see the module).
pub struct Counter {
    /// The engine's UTC offset, in ms: days are local.
    off: i64,
    /// The day `rows` counts.
    day: i64,
    rows: Vec<Row>,
    counted: bool,
    /// Other days of this batch (rare).
    other: Vec<(i64, Vec<Row>)>,
    rules: Arc<RuleSet>,
    /// Rule indexes by name, for outcomes and replies (they name their rule).
    by_name: HashMap<Arc<str>, u32, foldhash::fast::FixedState>,
    inbox: Option<Arc<Inbox>>,
}

impl Counter {
    pub fn new(rules: &Arc<RuleSet>, offset: chrono::FixedOffset) -> Counter {
        let mut c = Counter {
            off: i64::from(offset.local_minus_utc()) * 1000,
            day: i64::MIN,
            rows: Vec::new(),
            counted: false,
            other: Vec::new(),
            rules: Arc::clone(rules),
            by_name: HashMap::default(),
            inbox: None,
        };
        c.set_rules(rules);
        c
    }

    /// Counts go to `inbox` from now on (without one they are dropped at each batch's end).
    pub fn connect(&mut self, inbox: Arc<Inbox>) {
        self.inbox = Some(inbox);
    }

    /// Counts from now on are of `rules` (at start, and after a reload: flushed before).
    pub fn set_rules(&mut self, rules: &Arc<RuleSet>) {
        self.rules = Arc::clone(rules);
        self.rows = vec![[0; STAGES]; rules.rules.len()];
        self.other.clear();
        self.counted = false;
        self.by_name = rules.rules.iter().enumerate().map(|(i, r)| (Arc::clone(&r.name), i as u32)).collect();
    }

    /// The local day of `ts` (days since 1970-01-01 in the engine's offset, as calendar caps
    /// count days).
    #[inline]
    pub fn day_of(&self, ts: Millis) -> i64 {
        (ts + self.off).div_euclid(DAY)
    }

    /// An event at `ts` is in hand: its day becomes the current one, the rules' `triggered`
    /// counts so far going to the day before when it changes. Returns the day.
    #[inline]
    pub fn event_day(&mut self, ts: Millis, triggered: &mut [u32]) -> i64 {
        let day = self.day_of(ts);
        if day != self.day {
            self.fold(triggered);
            self.switch(day);
        }
        day
    }

    /// The current day: the last event's (see [`Counter::event_day`]).
    #[inline]
    pub fn day(&self) -> i64 {
        self.day
    }

    fn switch(&mut self, day: i64) {
        if self.counted {
            let rows = std::mem::replace(&mut self.rows, vec![[0; STAGES]; self.rules.rules.len()]);
            self.put_other(self.day, &rows);
            self.counted = false;
        }
        // A day already counted aside in this batch becomes current again.
        if let Some(i) = self.other.iter().position(|(d, _)| *d == day) {
            self.rows = self.other.swap_remove(i).1;
            self.counted = true;
        }
        self.day = day;
    }

    /// The rows of `day` held aside, added empty when missing.
    fn aside(&mut self, day: i64) -> &mut Vec<Row> {
        let i = match self.other.iter().position(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                self.other.push((day, vec![[0; STAGES]; self.rules.rules.len()]));
                self.other.len() - 1
            }
        };
        &mut self.other[i].1
    }

    fn put_other(&mut self, day: i64, rows: &[Row]) {
        for (into, r) in self.aside(day).iter_mut().zip(rows) {
            for (a, b) in into.iter_mut().zip(r) {
                *a += b;
            }
        }
    }

    /// The rules' `triggered` counts go into the current day's rows.
    fn fold(&mut self, triggered: &mut [u32]) {
        for (row, n) in self.rows.iter_mut().zip(triggered.iter_mut()) {
            if *n != 0 {
                row[TRIGGERED] += u64::from(*n);
                *n = 0;
                self.counted = true;
            }
        }
    }

    /// Adds `n` to `stage` of `rule` on `day`.
    #[inline]
    pub fn add(&mut self, day: i64, rule: u32, stage: usize, n: u64) {
        if day == self.day {
            if let Some(row) = self.rows.get_mut(rule as usize) {
                row[stage] += n;
                self.counted = true;
            }
        } else {
            self.add_aside(day, rule, stage, n);
        }
    }

    #[cold]
    fn add_aside(&mut self, day: i64, rule: u32, stage: usize, n: u64) {
        if let Some(r) = self.aside(day).get_mut(rule as usize) {
            r[stage] += n;
        }
    }

    /// Candidates about to go to policy: each new one (not a contact held for quiet hours
    /// coming back) is `matched`, on the day of its time; a journey step's is `triggered` too
    /// (entering the step is what evaluates it).
    #[inline]
    pub fn matched(&mut self, cands: &[Candidate], journey: bool) {
        for c in cands.iter().filter(|c| c.deferred.is_none()) {
            let day = self.day_of(c.ts);
            self.add(day, c.rule, MATCHED, 1);
            if journey {
                self.add(day, c.rule, TRIGGERED, 1);
            }
        }
    }

    /// A delivery report or call result on `day`: `delivered`, `answered` or `accepted` for the
    /// rule it names (other statuses are not stages of the funnel).
    pub fn outcome(&mut self, day: i64, o: &ContactOutcome) {
        let stage = match o.status {
            OutcomeStatus::Delivered => DELIVERED,
            OutcomeStatus::Answered => ANSWERED,
            OutcomeStatus::Accepted => ACCEPTED,
            _ => return,
        };
        if let Some(&ri) = self.by_name.get(&*o.rule) {
            self.add(day, ri, stage, 1);
        }
    }

    /// A reply on `day`, tied by contact policy to the SMS it answers: `replied` for its rule.
    pub fn reply(&mut self, day: i64, r: &SubscriberReply) {
        if let Some(&ri) = r.in_reply_to.as_ref().and_then(|i| self.by_name.get(&*i.rule)) {
            self.add(day, ri, REPLIED, 1);
        }
    }

    /// A daily tick at `at` (its local `minutes` of day) over `subscribers`: each enabled rule
    /// scheduled then is `triggered` once for every one of them.
    pub fn daily(&mut self, minutes: &[u32], at: Millis, subscribers: usize) {
        let day = self.day_of(at);
        let rules = Arc::clone(&self.rules);
        for &ri in &rules.scheduled {
            let r = &rules.rules[ri as usize];
            if r.enabled && r.schedule.is_some_and(|m| minutes.contains(&m)) {
                self.add(day, ri, TRIGGERED, subscribers as u64);
            }
        }
    }

    /// The end of batch `no`: its counts go to the write side.
    pub fn flush(&mut self, no: u64, triggered: &mut [u32]) {
        self.fold(triggered);
        let mut days = std::mem::take(&mut self.other);
        if self.counted {
            let rows = std::mem::replace(&mut self.rows, vec![[0; STAGES]; self.rules.rules.len()]);
            days.push((self.day, rows));
            self.counted = false;
        }
        if let (Some(inbox), false) = (&self.inbox, days.is_empty()) {
            inbox.put(Delta { no, rules: Arc::clone(&self.rules), days });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{LoadOptions, compile};

    fn rules() -> Arc<RuleSet> {
        let pack = "- rule: a\n  on: [crm]\n  condition: event.event == x\n  action: { channel: sms, template: t }\n\
                    - rule: b\n  on: [topup]\n  condition: true\n  action: { channel: sms, template: t }\n";
        let loaded = compile(vec![("t.yaml".into(), pack.into())], None, &LoadOptions::default());
        Arc::new(loaded.rules.expect("the pack compiles"))
    }

    #[test]
    fn counts_go_to_their_local_day_and_leave_once_per_batch() {
        let rules = rules();
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
        let mut c = Counter::new(&rules, beijing);
        let inbox = Arc::new(Inbox::default());
        c.connect(Arc::clone(&inbox));
        let late = crate::time::parse_ts("2026-12-03T23:00:00+08:00").expect("a time");
        let (d1, d2) = (c.day_of(late), c.day_of(late + 2 * 3_600_000));
        assert_eq!(d2, d1 + 1, "a local day, not a UTC one");
        let mut triggered = vec![0u32; 2];
        assert_eq!(c.event_day(late, &mut triggered), d1);
        triggered[1] += 2;
        c.add(d1, 1, MATCHED, 1);
        c.event_day(late + 2 * 3_600_000, &mut triggered);
        triggered[1] += 1;
        c.add(d1, 0, DELIVERED, 1); // a timer or a late event of the day before
        c.event_day(late, &mut triggered); // back to the first day within the batch
        c.add(d1, 1, MATCHED, 1);
        c.flush(7, &mut triggered);
        assert!(inbox.take_before(7).is_empty(), "batch 7 is not written yet");
        let mut got = inbox.take_before(8);
        assert_eq!(got.len(), 1);
        let mut days = std::mem::take(&mut got[0].days);
        days.sort_by_key(|d| d.0);
        assert_eq!(days.iter().map(|d| d.0).collect::<Vec<_>>(), [d1, d2]);
        let (first, second) = (&days[0].1, &days[1].1);
        assert_eq!((first[1][TRIGGERED], first[1][MATCHED], first[0][DELIVERED]), (2, 2, 1));
        assert_eq!((second[1][TRIGGERED], second[1][MATCHED]), (1, 0));
        c.flush(8, &mut triggered);
        assert!(inbox.take_before(9).is_empty(), "nothing counted: nothing sent");
    }
}
