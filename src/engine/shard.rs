//! A shard: the single owner of a set of subscribers. `process` is a plain synchronous
//! function of (state, event) -> decisions; threads and channels live in the pipeline, so the
//! rule tests and the one-shard path call it directly.

use super::decision::{Decision, OrderKey, action_id};
use crate::event::{Body, Event, LocTrigger};
use crate::refdata::{RefData, Subscriber};
use crate::rules::expr::{Ctx, Local};
use crate::rules::{Rule, RuleSet};
use crate::state::{PendingTimer, SubState, TriggerRef};
use crate::util::{Millis, Msisdn, mix64};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Msisdns are already well-spread integers once mixed; SipHash would be wasted work.
#[derive(Default)]
pub struct MsisdnHasher(u64);

impl Hasher for MsisdnHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type MsisdnMap<V> = HashMap<Msisdn, V, BuildHasherDefault<MsisdnHasher>>;

pub struct Entry {
    pub sub: Subscriber,
    pub known: bool,
    pub state: SubState,
}

impl Entry {
    /// The evaluation context for this subscriber at `now`.
    fn ctx<'a>(
        &'a self,
        event: Option<&'a Event>,
        now: Millis,
        local: Local,
        refdata: &'a RefData,
        offset: chrono::FixedOffset,
    ) -> Ctx<'a> {
        Ctx { event, now, local, sub: &self.sub, known: self.known, state: &self.state, refdata, offset }
    }
}

/// Timer index entry: (due, msisdn, rule, armed_at).
type TimerKey = (Millis, u64, u32, u64);

pub struct Shard {
    pub rules: Arc<RuleSet>,
    pub refdata: Arc<RefData>,
    pub subs: MsisdnMap<Entry>,
    timers: BTreeSet<TimerKey>,
    pub offset: chrono::FixedOffset,
    /// Reused per event to avoid allocating.
    scratch_aggs: Vec<(u32, i64)>,
    scratch_seq: Vec<bool>,
}

/// Counters a shard keeps for the run summary.
#[derive(Default, Clone, Debug)]
pub struct ShardStats {
    pub timers_armed: u64,
    pub timers_cancelled: u64,
    pub timers_fired: u64,
    pub rechecks_failed: u64,
}

impl Shard {
    pub fn new(
        rules: Arc<RuleSet>,
        refdata: Arc<RefData>,
        subs: impl IntoIterator<Item = Subscriber>,
        offset: chrono::FixedOffset,
    ) -> Shard {
        let subs =
            subs.into_iter().map(|s| (s.msisdn, Entry { sub: s, known: true, state: SubState::default() })).collect();
        Shard {
            rules,
            refdata,
            subs,
            timers: BTreeSet::new(),
            offset,
            scratch_aggs: Vec::new(),
            scratch_seq: Vec::new(),
        }
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Processes one event at input position `pos`, appending decisions to `out`.
    pub fn process(&mut self, pos: u64, ev: &Event, out: &mut Vec<Decision>, stats: &mut ShardStats) {
        let kind = ev.kind();
        let rules = Arc::clone(&self.rules);
        let refdata = Arc::clone(&self.refdata);
        let entry = self.subs.entry(ev.msisdn).or_insert_with(|| Entry {
            sub: Subscriber::unknown(ev.msisdn),
            known: false,
            state: SubState::default(),
        });

        // 1. Facts the event states about the subscriber.
        let st = &mut entry.state;
        st.begin(ev.ts, ev.balance_fen());
        match &ev.body {
            Body::Profile(p) => {
                for c in &p.set {
                    entry.sub.apply(c);
                }
                for f in &p.unset {
                    entry.sub.unset(*f);
                }
                entry.known = true;
            }
            Body::Topup(t) => st.record_topup(ev.ts, t.amount_fen),
            Body::Ivr(i) => st.record_ivr(ev.ts, i.step, i.node.clone()),
            Body::Location(l) => {
                let cell = (l.trigger != LocTrigger::Detach).then_some(&*l.cell);
                st.move_to(cell, ev.ts, &refdata);
            }
            Body::Usage(u) => {
                if let Some(c) = &u.cell {
                    st.move_to(Some(c), ev.ts, &refdata);
                }
            }
            Body::Crm(_) => {}
        }

        // 2. Windows and sequences: decide with the state read-only, then apply.
        let local = Local::at(ev.ts, self.offset);
        self.scratch_aggs.clear();
        let mut seq_updates: Vec<(u32, Vec<bool>)> = Vec::new();
        {
            let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, self.offset);
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
                self.scratch_seq.clear();
                for (k, f) in &def.steps {
                    self.scratch_seq.push(*k == kind && f.as_ref().is_none_or(|f| cx.eval_bool(f)));
                }
                if self.scratch_seq.iter().any(|m| *m) {
                    seq_updates.push((slot, self.scratch_seq.clone()));
                }
            }
        }
        let st = &mut entry.state;
        for &(slot, amount) in &self.scratch_aggs {
            let def = &rules.aggs[slot as usize];
            st.agg_add(slot, ev.ts, amount, def.bucket, def.window);
        }
        for (slot, matches) in &seq_updates {
            st.seq_step(*slot, matches, ev.ts, rules.seqs[*slot as usize].within);
        }

        // 3. Cancel absence timers this event answers.
        if rules.cancel_kinds.contains(kind) && !entry.state.timers.is_empty() {
            let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, self.offset);
            let cancel: Vec<usize> = entry
                .state
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    let Some(def) = rules.rules[t.rule as usize].timer.as_ref() else { return false };
                    def.cancel_on.contains(kind)
                        && def.cancel_if.as_ref().is_none_or(|c| cx.eval_bool(c))
                        && t.due > ev.ts
                })
                .map(|(i, _)| i)
                .collect();
            drop(cx);
            for i in cancel.into_iter().rev() {
                let t = entry.state.timers.remove(i);
                self.timers.remove(&(t.due, ev.msisdn.raw(), t.rule, t.armed_at));
                stats.timers_cancelled += 1;
            }
        }

        // 4. Rules.
        let cx = entry.ctx(Some(ev), ev.ts, local, &refdata, self.offset);
        let trigger = || TriggerRef { kind, id: ev.id.clone(), ts: ev.ts };
        let mut arm: Vec<PendingTimer> = Vec::new();
        for &ri in &rules.by_kind[kind as usize] {
            let rule = &rules.rules[ri as usize];
            if !rule.enabled || !cx.eval_bool(&rule.condition) {
                continue;
            }
            match &rule.timer {
                Some(t) => {
                    // One pending timer per rule and subscriber: a second trigger while the
                    // first waits does not restart the clock.
                    if cx.state.timers.iter().any(|p| p.rule == ri) || arm.iter().any(|p| p.rule == ri) {
                        continue;
                    }
                    let (text, script) = render(rule, &cx);
                    arm.push(PendingTimer {
                        due: ev.ts + t.after,
                        rule: ri,
                        trigger: trigger(),
                        armed_at: pos,
                        text,
                        script,
                    });
                }
                None => {
                    let (text, script) = render(rule, &cx);
                    let key = OrderKey { pos, phase: 1, due: 0, msisdn: 0, rule: ri };
                    out.push(decide(rule, ri, key, ev.msisdn, ev.ts, trigger(), None, text, script));
                }
            }
        }
        drop(cx);
        for t in arm {
            self.timers.insert((t.due, ev.msisdn.raw(), t.rule, t.armed_at));
            entry.state.timers.push(t);
            stats.timers_armed += 1;
        }
    }

    /// Fires every timer due at or before `wm`. `place(due, armed_at)` gives the input
    /// position a timer logically fires at (see [`OrderKey`]).
    pub fn fire_timers(
        &mut self,
        wm: Millis,
        place: &dyn Fn(Millis, u64) -> u64,
        out: &mut Vec<Decision>,
        stats: &mut ShardStats,
    ) {
        while let Some(&(due, raw, rule_idx, armed_at)) = self.timers.first() {
            if due > wm {
                break;
            }
            self.timers.pop_first();
            let rules = Arc::clone(&self.rules);
            let refdata = Arc::clone(&self.refdata);
            let Some(entry) = self.subs.get_mut(&Msisdn::from_raw(raw)) else { continue };
            let Some(i) =
                entry.state.timers.iter().position(|t| t.due == due && t.rule == rule_idx && t.armed_at == armed_at)
            else {
                continue;
            };
            let timer = entry.state.timers.remove(i);
            stats.timers_fired += 1;
            let rule = &rules.rules[rule_idx as usize];
            let cx = entry.ctx(None, due, Local::at(due, self.offset), &refdata, self.offset);
            if let Some(re) = rule.timer.as_ref().and_then(|t| t.recheck.as_ref()) {
                if !cx.eval_bool(re) {
                    stats.rechecks_failed += 1;
                    continue;
                }
            }
            let key = OrderKey { pos: place(due, armed_at), phase: 2, due, msisdn: raw, rule: rule_idx };
            out.push(decide(
                rule,
                rule_idx,
                key,
                entry.sub.msisdn,
                due,
                timer.trigger,
                Some(due),
                timer.text,
                timer.script,
            ));
        }
    }
}

fn render(rule: &Rule, cx: &Ctx) -> (Option<String>, Option<String>) {
    (rule.template.as_ref().map(|t| t.render(cx)), rule.script.as_ref().map(|t| t.render(cx)))
}

#[allow(clippy::too_many_arguments)]
fn decide(
    rule: &Rule,
    ri: u32,
    key: OrderKey,
    msisdn: Msisdn,
    ts: Millis,
    trigger: TriggerRef,
    due: Option<Millis>,
    text: Option<String>,
    script: Option<String>,
) -> Decision {
    Decision {
        key,
        id: action_id(&rule.name, &trigger, due),
        ts,
        msisdn,
        rule: ri,
        rule_name: rule.name.clone(),
        campaign: rule.campaign.clone(),
        channel: rule.channel,
        priority: rule.priority,
        text,
        script,
        queue: rule.queue.clone(),
        trigger,
        suppressed: None,
    }
}
