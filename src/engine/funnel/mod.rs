//! The funnel: per local day and rule (and so per campaign), how many times the rule was
//! triggered, matched, suppressed by each reason, sent, delivered, replied to, answered and
//! accepted — live, kept in the checkpoint, served as `GET /v1/funnel` (see `api::funnel`).
//!
//! Who counts what, and where:
//!
//! - **triggered** and **matched** on the shards ([`count`]), where rules are evaluated:
//!   triggered is a rule evaluated for an event (visited through its kind's index and enabled),
//!   for a daily tick (once per subscriber of the tick), or a journey step entered; matched is a
//!   candidate contact proposed to policy (an event's, a timer's whose recheck held, a daily
//!   rule's, a journey step's), counted once however often quiet hours hold it.
//! - **delivered**, **answered** and **accepted** on the shards too, from `outcome` events (status
//!   `delivered`, `answered`, `accepted`) for the rule they name; **replied** from `reply` events
//!   that contact policy tied to an SMS, for that SMS's rule. Each on the outcome's or reply's
//!   own day.
//! - **sent** and **suppressed** by reason on the write side ([`Funnel::decision`]), from each
//!   decision as it is written to `decisions.jsonl` — after channel capacity and the campaigns'
//!   budgets, which decide there — on the day of the decision's time. A contact held for quiet
//!   hours is counted when it is finally decided (sent, or suppressed); so the counts equal those
//!   of `decisions.jsonl` line for line.
//!
//! The day is the engine's local calendar day (its UTC offset), as calendar caps count days.
//! Shards hand their counts of each batch to the write side ([`Inbox`]), which adds them in
//! when it has written that batch: the tally after batch N is exactly the counts of batches up to
//! N, and that is what checkpoint N keeps ([`Tally::save`]); a restart carries on from it. The
//! funnel never feeds a decision.
//!
//! Rules are kept by name (a reload or a restart under other rules keeps counting the same
//! rule), with the campaign the latest rule set gives them. Shadow rules have rows of their own
//! (what they would have done) and are left out of their campaign's totals. Only the last
//! `keep` days (the newest day seen counts; `engine.funnel_days`, default
//! [`DEFAULT_DAYS`]) are kept, so the state does not grow with time.

pub mod count;

pub use count::{Counter, Inbox};

use crate::codec::{Bad, Dec, Enc};
use crate::contact::{Decision, Outcome, Suppression};
use crate::rules::RuleSet;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Stages of a row (the suppressions follow, one per reason, at [`suppressed`]).
pub const TRIGGERED: usize = 0;
pub const MATCHED: usize = 1;
pub const SENT: usize = 2;
pub const DELIVERED: usize = 3;
pub const REPLIED: usize = 4;
pub const ANSWERED: usize = 5;
pub const ACCEPTED: usize = 6;
const SUPPRESSED: usize = 7;
pub const STAGES: usize = SUPPRESSED + Suppression::ALL.len();
/// The named stages in funnel order, as the API names them.
pub const NAMED: [(&str, usize); 7] = [
    ("triggered", TRIGGERED),
    ("matched", MATCHED),
    ("sent", SENT),
    ("delivered", DELIVERED),
    ("replied", REPLIED),
    ("answered", ANSWERED),
    ("accepted", ACCEPTED),
];

/// One rule's counts on one day.
pub type Row = [u64; STAGES];

/// Where reason `r`'s count is in a row.
pub fn suppressed(r: Suppression) -> usize {
    SUPPRESSED + r as usize
}

/// Days kept by default: two months of 31 days.
pub const DEFAULT_DAYS: u32 = 62;

/// What the latest rule set says of a rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleInfo {
    /// `None`: the rule names no campaign (its campaign is its own name, the default).
    pub campaign: Option<Arc<str>>,
    pub shadow: bool,
}

/// The funnel's counts: per local day (days since 1970-01-01), per rule by name.
#[derive(Clone, Debug)]
pub struct Tally {
    keep: u32,
    names: Vec<Arc<str>>,
    info: Vec<RuleInfo>,
    slots: HashMap<Arc<str>, u32>,
    /// Rows by slot (shorter than `names` when later rules have no count that day).
    days: BTreeMap<i64, Vec<Row>>,
}

impl Tally {
    /// Keeps the last `keep` days (at least one).
    pub fn new(keep: u32) -> Tally {
        Tally { keep: keep.max(1), names: Vec::new(), info: Vec::new(), slots: HashMap::new(), days: BTreeMap::new() }
    }

    fn slot(&mut self, name: &Arc<str>) -> u32 {
        if let Some(s) = self.slots.get(name) {
            return *s;
        }
        let s = self.names.len() as u32;
        self.names.push(Arc::clone(name));
        self.info.push(RuleInfo::default());
        self.slots.insert(Arc::clone(name), s);
        s
    }

    /// Takes what `rules` says of its rules (campaign, shadow); returns the slot of each rule.
    pub fn learn(&mut self, rules: &RuleSet) -> Vec<u32> {
        rules
            .rules
            .iter()
            .map(|r| {
                let s = self.slot(&r.name);
                let campaign = (r.campaign != r.name).then(|| Arc::clone(&r.campaign));
                self.info[s as usize] = RuleInfo { campaign, shadow: r.shadow };
                s
            })
            .collect()
    }

    /// The row of `slot` on `day`; `None` for a day older than those kept.
    fn row(&mut self, day: i64, slot: u32) -> Option<&mut Row> {
        if self.days.last_key_value().is_some_and(|(newest, _)| day <= newest - i64::from(self.keep)) {
            return None;
        }
        let rows = self.days.entry(day).or_default();
        if rows.len() <= slot as usize {
            rows.resize(slot as usize + 1, [0; STAGES]);
        }
        rows.get_mut(slot as usize)
    }

    /// Adds `rows` (by rule index of a rule set whose slots are `map`) to `day`.
    pub fn add_rows(&mut self, map: &[u32], day: i64, rows: &[Row]) {
        self.add(day, map.iter().copied().zip(rows));
    }

    /// Adds rows to `day`, each to its slot.
    fn add<'r>(&mut self, day: i64, rows: impl Iterator<Item = (u32, &'r Row)>) {
        for (slot, r) in rows {
            if r.iter().all(|n| *n == 0) {
                continue;
            }
            let Some(into) = self.row(day, slot) else { return };
            for (a, b) in into.iter_mut().zip(r) {
                *a += b;
            }
        }
    }

    /// Forgets the days before the last `keep`.
    pub fn bound(&mut self) {
        let Some((&newest, _)) = self.days.last_key_value() else { return };
        let first = newest - i64::from(self.keep) + 1;
        while let Some(e) = self.days.first_entry().filter(|e| *e.key() < first) {
            e.remove();
        }
    }

    /// Every day's rows: (day, rule, what the rules say of it, its counts), days ascending.
    pub fn rows(&self) -> impl Iterator<Item = (i64, &Arc<str>, &RuleInfo, &Row)> {
        self.days.iter().flat_map(move |(day, rows)| {
            rows.iter().zip(self.names.iter().zip(&self.info)).map(move |(r, (n, i))| (*day, n, i, r))
        })
    }

    /// The days held, oldest first.
    pub fn days(&self) -> impl Iterator<Item = i64> + '_ {
        self.days.keys().copied()
    }

    /// The counts for a checkpoint: the rules (name, campaign, shadow), then per day its
    /// non-zero rows (slot, then every stage).
    pub fn save(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u32(self.names.len() as u32);
        for (n, i) in self.names.iter().zip(&self.info) {
            e.str(n);
            e.opt_str(i.campaign.as_deref());
            e.bool(i.shadow);
        }
        e.u32(self.days.len() as u32);
        for (day, rows) in &self.days {
            e.i64(*day);
            let counted: Vec<(usize, &Row)> =
                rows.iter().enumerate().filter(|(_, r)| r.iter().any(|n| *n != 0)).collect();
            e.u32(counted.len() as u32);
            for (s, r) in counted {
                e.u32(s as u32);
                r.iter().for_each(|n| e.u64(*n));
            }
        }
        e.buf
    }

    /// Puts back what [`Tally::save`] wrote (empty: a checkpoint from before the funnel),
    /// keeping this tally's bound.
    pub fn restore(&mut self, b: &[u8]) -> Result<(), Bad> {
        *self = Tally::new(self.keep);
        if b.is_empty() {
            return Ok(());
        }
        let mut d = Dec::new(b);
        for _ in 0..d.len(6)? {
            let name: Arc<str> = Arc::from(d.str()?);
            let campaign = d.opt_str()?.map(Arc::from);
            let shadow = d.bool()?;
            let s = self.slot(&name);
            self.info[s as usize] = RuleInfo { campaign, shadow };
        }
        for _ in 0..d.len(12)? {
            let day = d.i64()?;
            let mut rows = Vec::new();
            for _ in 0..d.len(4 + 8 * STAGES)? {
                let s = d.u32()? as usize;
                if s >= self.names.len() {
                    return Err(Bad(format!("funnel row of rule {s}, of {} rules", self.names.len())));
                }
                if rows.len() <= s {
                    rows.resize(s + 1, [0; STAGES]);
                }
                for n in rows[s].iter_mut() {
                    *n = d.u64()?;
                }
            }
            self.days.insert(day, rows);
        }
        if !d.done() {
            return Err(Bad("bytes left over after the funnel".into()));
        }
        self.bound();
        Ok(())
    }
}

/// The funnel as the write side last published it, for the admin API.
#[derive(Debug)]
pub struct FunnelBook {
    keep: u32,
    tally: Mutex<Tally>,
}

impl FunnelBook {
    /// A book for a run keeping the last `keep` days.
    pub fn new(keep: u32) -> FunnelBook {
        FunnelBook { keep, tally: Mutex::new(Tally::new(keep)) }
    }

    /// Reads the funnel as last published.
    pub fn read<T>(&self, f: impl FnOnce(&Tally) -> T) -> T {
        f(&self.tally.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Default for FunnelBook {
    fn default() -> Self {
        FunnelBook::new(DEFAULT_DAYS)
    }
}

/// The funnel on the write side: the tally, the shards' counts coming in, and the book the
/// API reads.
pub struct Funnel {
    tally: Tally,
    inbox: Arc<Inbox>,
    book: Option<Arc<FunnelBook>>,
    off: i64,
    /// The rule set decisions are written under now, and its slots.
    rules: Arc<RuleSet>,
    map: Vec<u32>,
    /// Slots of the rule sets the shards counted under (a reload brings another).
    maps: Vec<(Arc<RuleSet>, Vec<u32>)>,
    /// The decisions' counts of the batch in hand: (day, rows by slot), added to the tally
    /// when it is written (a map's lookups per decision would cost more than the counting).
    batch: Vec<(i64, Vec<Row>)>,
    /// Days changed since the book was last brought up to date.
    changed: std::collections::BTreeSet<i64>,
    /// Rules learnt since then.
    learnt: bool,
}

impl Funnel {
    pub fn new(rules: &Arc<RuleSet>, offset: chrono::FixedOffset, book: Option<Arc<FunnelBook>>) -> Funnel {
        let mut tally = Tally::new(book.as_ref().map_or(DEFAULT_DAYS, |b| b.keep));
        let map = tally.learn(rules);
        Funnel {
            tally,
            inbox: Arc::default(),
            book,
            off: i64::from(offset.local_minus_utc()) * 1000,
            rules: Arc::clone(rules),
            map: map.clone(),
            maps: vec![(Arc::clone(rules), map)],
            batch: Vec::new(),
            changed: Default::default(),
            learnt: true,
        }
    }

    /// Where the shards leave their counts.
    pub fn inbox(&self) -> Arc<Inbox> {
        Arc::clone(&self.inbox)
    }

    /// Decisions are written under `rules` from here on (a reload).
    pub fn set_rules(&mut self, rules: &Arc<RuleSet>) {
        self.map = self.tally.learn(rules);
        self.rules = Arc::clone(rules);
        self.learnt = true;
    }

    /// A decision as it is written: `sent`, or `suppressed` by its reason (a hold for quiet
    /// hours is counted when it is decided again).
    pub fn decision(&mut self, d: &Decision) {
        let stage = match d.outcome {
            Outcome::Sent => SENT,
            Outcome::Suppressed(r) => suppressed(r),
            Outcome::Deferred(_) => return,
        };
        // By index under the rules in force; by name for one decided under earlier rules (a
        // contact that waited for capacity across a reload).
        let slot = match self.rules.rules.get(d.rule as usize) {
            Some(r) if Arc::ptr_eq(&r.name, &d.rule_name) || r.name == d.rule_name => self.map[d.rule as usize],
            _ => {
                let known = self.tally.names.len();
                let s = self.tally.slot(&d.rule_name);
                self.learnt |= self.tally.names.len() != known;
                s
            }
        };
        let day = (d.ts + self.off).div_euclid(crate::time::DAY);
        let i = match self.batch.iter().rposition(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                self.batch.push((day, Vec::new()));
                self.batch.len() - 1
            }
        };
        let rows = &mut self.batch[i].1;
        if rows.len() <= slot as usize {
            rows.resize(slot as usize + 1, [0; STAGES]);
        }
        rows[slot as usize][stage] += 1;
    }

    /// Batch `written - 1` is written: the shards' counts of every batch up to it come in, old
    /// days go, and the book is brought up to date.
    pub fn written(&mut self, written: u64) {
        for (day, rows) in std::mem::take(&mut self.batch) {
            self.tally.add(day, (0..).zip(&rows));
            self.changed.insert(day);
        }
        for delta in self.inbox.take_before(written) {
            let i = match self.maps.iter().position(|(r, _)| Arc::ptr_eq(r, &delta.rules)) {
                Some(i) => i,
                None => {
                    let map = self.tally.learn(&delta.rules);
                    self.learnt = true;
                    // Only the rule sets still in use are worth keeping.
                    self.maps.retain(|(r, _)| Arc::strong_count(r) > 1);
                    self.maps.push((Arc::clone(&delta.rules), map));
                    self.maps.len() - 1
                }
            };
            for (day, rows) in &delta.days {
                self.tally.add_rows(&self.maps[i].1, *day, rows);
                self.changed.insert(*day);
            }
        }
        self.publish();
    }

    fn publish(&mut self) {
        if self.changed.is_empty() && !self.learnt {
            return;
        }
        self.tally.bound();
        let Some(book) = &self.book else {
            self.changed.clear();
            self.learnt = false;
            return;
        };
        let mut b = book.tally.lock().unwrap_or_else(|p| p.into_inner());
        if self.learnt {
            b.names.clone_from(&self.tally.names);
            b.info.clone_from(&self.tally.info);
            b.slots.clone_from(&self.tally.slots);
        }
        for day in std::mem::take(&mut self.changed) {
            match self.tally.days.get(&day) {
                Some(rows) => {
                    b.days.insert(day, rows.clone());
                }
                None => {
                    b.days.remove(&day);
                }
            }
        }
        let tally = &self.tally;
        b.days.retain(|d, _| tally.days.contains_key(d));
        self.learnt = false;
    }

    /// The counts for a checkpoint ([`Tally::save`]).
    pub fn save(&self) -> Vec<u8> {
        self.tally.save()
    }

    /// Puts back a checkpoint's counts and publishes them.
    pub fn restore(&mut self, b: &[u8]) -> Result<(), Bad> {
        self.tally.restore(b)?;
        self.map = self.tally.learn(&self.rules);
        self.maps = vec![(Arc::clone(&self.rules), self.map.clone())];
        self.changed = self.tally.days().collect();
        if let Some(book) = &self.book {
            *book.tally.lock().unwrap_or_else(|p| p.into_inner()) = Tally::new(book.keep);
        }
        self.learnt = true;
        self.publish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::count::Delta;
    use super::*;
    use crate::contact::{Channel, OrderKey, TriggerRef};
    use crate::rules::{LoadOptions, compile};

    fn rules(pack: &str) -> Arc<RuleSet> {
        let loaded = compile(vec![("t.yaml".into(), pack.into())], None, &LoadOptions::default());
        Arc::new(loaded.rules.expect("the pack compiles"))
    }

    const A_B: &str = "- rule: a\n  on: [crm]\n  condition: true\n  action: { channel: sms, template: t }\n  campaign: c\n\
                       - rule: b\n  on: [topup]\n  condition: true\n  action: { channel: sms, template: t }\n";

    fn decision(rules: &RuleSet, rule: u32, ts: i64, outcome: Outcome) -> Decision {
        let r = &rules.rules[rule as usize];
        Decision {
            key: OrderKey { pos: 0, phase: 1, due: 0, msisdn: 0, rule },
            id: "a1".into(),
            ts,
            msisdn: crate::util::Msisdn::from_raw(13_800_138_000),
            rule,
            rule_name: Arc::clone(&r.name),
            campaign: Arc::clone(&r.campaign),
            channel: Channel::Sms,
            priority: 0,
            text: None,
            script: None,
            queue: None,
            trigger: TriggerRef { kind: "crm", id: "e".into(), ts },
            outcome,
            detail: None,
            winner: None,
            expires: None,
            shadow: false,
            sender: None,
            about: None,
        }
    }

    fn row(stages: &[(usize, u64)]) -> Row {
        let mut r = [0; STAGES];
        for (i, n) in stages {
            r[*i] = *n;
        }
        r
    }

    /// (day, rule) -> counts, as the book holds them.
    fn book_rows(book: &FunnelBook) -> Vec<(i64, String, Option<String>, Row)> {
        let mut rows: Vec<_> = book.read(|t| {
            t.rows()
                .filter(|r| r.3.iter().any(|n| *n != 0))
                .map(|(d, n, i, r)| (d, n.to_string(), i.campaign.as_deref().map(String::from), *r))
                .collect()
        });
        rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        rows
    }

    #[test]
    fn shard_counts_come_in_with_their_batch_add_up_across_a_reload_and_old_days_go() {
        let day0 = 20_000; // a local day number
        let ts = |day: i64| (day * crate::time::DAY) - 8 * crate::time::HOUR + 10 * crate::time::HOUR;
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
        let old = rules(A_B);
        let book = Arc::new(FunnelBook::new(2));
        let mut f = Funnel::new(&old, beijing, Some(Arc::clone(&book)));
        let inbox = f.inbox();
        // Two shards' counts of batch 0, one shard's of batch 1 (not written yet).
        inbox.put(Delta { no: 0, rules: Arc::clone(&old), days: vec![(day0, vec![row(&[(TRIGGERED, 3)]), row(&[])])] });
        inbox.put(Delta {
            no: 0,
            rules: Arc::clone(&old),
            days: vec![(day0, vec![row(&[(TRIGGERED, 2), (MATCHED, 2)]), row(&[(DELIVERED, 1)])])],
        });
        inbox.put(Delta {
            no: 1,
            rules: Arc::clone(&old),
            days: vec![(day0, vec![row(&[(TRIGGERED, 100)]), row(&[])])],
        });
        f.decision(&decision(&old, 0, ts(day0), Outcome::Sent));
        f.decision(&decision(&old, 0, ts(day0), Outcome::Suppressed(Suppression::QuietHours)));
        f.decision(&decision(&old, 0, ts(day0), Outcome::Deferred(ts(day0) + 1)));
        f.written(1);
        let a = row(&[(TRIGGERED, 5), (MATCHED, 2), (SENT, 1), (suppressed(Suppression::QuietHours), 1)]);
        let b = row(&[(DELIVERED, 1)]);
        let want = vec![(day0, "a".to_string(), Some("c".to_string()), a), (day0, "b".into(), None, b)];
        assert_eq!(book_rows(&book), want, "batch 1's counts wait for it to be written; a hold is not counted");
        let saved = f.save();

        // A reload swaps the rules around and drops b: counts follow the names.
        let new = rules(&A_B.replace("rule: a", "rule: z").replace("campaign: c", "campaign: d"));
        f.set_rules(&new);
        inbox.put(Delta {
            no: 2,
            rules: Arc::clone(&new),
            days: vec![(day0 + 1, vec![row(&[(MATCHED, 7)]), row(&[])])],
        });
        f.decision(&decision(&new, 1, ts(day0 + 1), Outcome::Sent));
        f.written(3);
        let got = book_rows(&book);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0].3[TRIGGERED], 105, "batch 1 came in with batch 2");
        assert_eq!((got[2].1.as_str(), got[2].3[SENT]), ("b", 1));
        assert_eq!((got[3].1.as_str(), got[3].2.as_deref(), got[3].3[MATCHED]), ("z", Some("d"), 7));

        // Two days kept: a third day forgets the first; a count for a forgotten day is dropped.
        f.decision(&decision(&new, 1, ts(day0 + 2), Outcome::Sent));
        f.decision(&decision(&new, 1, ts(day0), Outcome::Sent));
        f.written(4);
        let days: Vec<i64> = book.read(|t| t.days().collect());
        assert_eq!(days, [day0 + 1, day0 + 2]);

        // A checkpoint's counts come back as they were, with their campaigns.
        let mut back = Funnel::new(&old, beijing, Some(Arc::new(FunnelBook::new(5))));
        back.restore(&saved).expect("restores");
        assert_eq!(back.save(), saved);
        let b2 = back.book.clone().expect("a book");
        assert_eq!(book_rows(&b2), want);
        assert!(back.restore(&saved[..saved.len() - 1]).is_err(), "cut short");
        assert!(back.restore(&[]).is_ok() && back.tally.days().count() == 0, "before the funnel: none");
    }
}
