//! The write side: decisions in output order pass channel capacity, then the campaigns'
//! budgets, are counted (the run summary, the funnel) and go to the sink; the checkpoint of a
//! batch gets its meta here once the batch's decisions are written.

use super::funnel::{Funnel, FunnelBook};
use super::{EngineOptions, Sink, Summary};
use crate::contact::{Decision, Outcome};
use crate::policy::budget::Budgets;
use crate::policy::capacity::Capacity;
use crate::rules::RuleSet;
use crate::state::checkpoint::{Meta, Part};
use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

/// The write side (see the module).
pub(super) struct Out<'a> {
    pub(super) sink: &'a mut dyn Sink,
    pub(super) capacity: Capacity,
    pub(super) budgets: Budgets,
    /// The funnel's counts: the decisions' here, the shards' as their batches are written.
    pub(super) funnel: Funnel,
    /// Rule sets swapped in after a batch (its number) not yet written: the budgets follow the
    /// rules of the decisions they see.
    pub(super) reloads: VecDeque<(u64, Arc<RuleSet>)>,
    pub(super) book: Option<Arc<crate::policy::budget::CampaignBook>>,
    buf: Vec<Decision>,
    /// Batches written so far (the number of the next one).
    pub(super) written: u64,
    /// Checkpoints waiting for their batch's decisions to be written and synced.
    pub(super) meta: VecDeque<Box<Meta>>,
    pub(super) to: Option<mpsc::Sender<Part>>,
    counters: crate::telemetry::DecisionCounters,
}

impl<'a> Out<'a> {
    /// The write side of a run of `rules` with `opts`, writing to `sink`.
    pub(super) fn new(sink: &'a mut dyn Sink, rules: &Arc<RuleSet>, opts: &EngineOptions) -> Out<'a> {
        let book: Option<Arc<FunnelBook>> = opts.funnel.clone();
        Out {
            sink,
            capacity: Capacity::new(opts.capacity),
            budgets: Budgets::new(rules, opts.budget_share),
            funnel: Funnel::new(rules, opts.offset, book),
            reloads: VecDeque::new(),
            book: opts.campaigns.clone(),
            buf: Vec::new(),
            written: 0,
            meta: VecDeque::new(),
            to: None,
            counters: Default::default(),
        }
    }
}

impl Out<'_> {
    /// Writes one batch's decisions (every batch, in order, exactly once).
    pub(super) fn write(&mut self, ds: &mut Vec<Decision>, summary: &mut Summary) -> std::io::Result<()> {
        if self.capacity.is_unlimited() {
            let budgets = &mut self.budgets;
            let idle = budgets.is_idle();
            for d in ds.iter_mut() {
                if !idle {
                    budgets.apply(d);
                }
                self.funnel.decision(d);
                Self::emit_to(&mut *self.sink, &mut self.counters, d, summary)?;
            }
            ds.clear();
        } else {
            for d in ds.drain(..) {
                self.capacity.offer(d, &mut self.buf);
                self.flush_buf(summary)?;
            }
        }
        self.sink.batch_end()?;
        self.written += 1;
        self.funnel.written(self.written);
        while self.reloads.front().is_some_and(|(no, _)| *no < self.written) {
            if let Some((_, rules)) = self.reloads.pop_front() {
                self.budgets.set_rules(&rules);
                self.funnel.set_rules(&rules);
            }
        }
        if let Some(book) = &self.book {
            self.budgets.publish(book);
        }
        // The checkpoint's batch is synced: its meta (capacity as of now) completes it.
        if self.meta.front().is_some_and(|m| m.id < self.written) {
            if let (Some(mut meta), Some(to)) = (self.meta.pop_front(), &self.to) {
                meta.capacity = self.capacity.save();
                meta.budgets = self.budgets.save();
                meta.funnel = self.funnel.save();
                meta.outbox_bytes = self.sink.position();
                let _ = to.send(Part::Meta { id: meta.id, meta });
            }
        }
        Ok(())
    }

    fn flush_buf(&mut self, summary: &mut Summary) -> std::io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        for d in buf.iter_mut() {
            self.budgets.apply(d);
            self.funnel.decision(d);
            Self::emit_to(&mut *self.sink, &mut self.counters, d, summary)?;
        }
        Ok(())
    }

    fn emit_to(
        sink: &mut dyn Sink,
        counters: &mut crate::telemetry::DecisionCounters,
        d: &Decision,
        summary: &mut Summary,
    ) -> std::io::Result<()> {
        counters.count(d);
        match d.outcome {
            Outcome::Sent if d.shadow => summary.shadow_actions += 1,
            Outcome::Suppressed(_) | Outcome::Deferred(_) if d.shadow => {}
            Outcome::Sent => {
                summary.actions += 1;
                match summary.actions_by_rule.get_mut(&*d.rule_name) {
                    Some(n) => *n += 1,
                    None => {
                        summary.actions_by_rule.insert(d.rule_name.to_string(), 1);
                    }
                }
            }
            Outcome::Suppressed(r) => *summary.suppressed_by_reason.entry(r).or_default() += 1,
            Outcome::Deferred(_) => {}
        }
        sink.decision(d)
    }

    pub(super) fn finish(&mut self, summary: &mut Summary, drain: bool) -> std::io::Result<()> {
        if drain {
            self.capacity.finish(&mut self.buf);
            self.flush_buf(summary)?;
        }
        self.sink.flush()
    }
}
