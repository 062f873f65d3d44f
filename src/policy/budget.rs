//! Campaign budgets: the contacts a campaign may make in all, and what they may cost.
//!
//! A budget is the whole engine's, not a subscriber's, so like channel capacity it cannot be
//! decided in the shards: it is applied once, after them (and after capacity, so a contact that
//! waited for a slot and expired costs nothing), to decisions in output order — the same order
//! for any shard count and batch size, so a replay, a run on more shards and a restart from a
//! checkpoint spend the budget on the same contacts. It counts contacts sent (a contact held out
//! by the control group or suppressed by any step is not), at the cost its channel has in the
//! campaign's `cost_fen` (an SMS at that cost for each message it is sent as: each part of a
//! long one is billed); a contact that would go past `contacts` or `limit_fen` is recorded as
//! suppressed with reason `budget`, and nothing more of the campaign is sent that would.
//! Orders and shadow rules' would-be contacts spend nothing.
//!
//! With several instances (`[scale]`), each counts what it sends against its share of every
//! budget (`scale.capacity_share`, default 1 / instances), as it does for channel capacity: the
//! instances' contacts add up to the budget at most, and no instance waits on another.
//!
//! What is spent is kept per campaign name (a reload keeps it, and a campaign's budget raised
//! by a reload lets it go on), carried in the checkpoint, and published for
//! `GET /v1/campaigns` ([`CampaignBook`]).
//!
//! The shards have already written a contact the budget stops into the subscriber's contact
//! history (they decide before the budget is counted): it counts toward that subscriber's caps
//! as a contact stopped by capacity does. Feeding the spent budget back into the shards would
//! make the decisions depend on where batches end, which the engine never allows.

use crate::contact::{Decision, Outcome, Suppression};
use crate::rules::RuleSet;
use crate::rules::policy::Budget;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a campaign has spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Spent {
    pub contacts: u64,
    pub fen: u64,
}

/// The budget stage of the write side.
#[derive(Default)]
pub struct Budgets {
    /// The campaigns with a budget in the rules in force, by name (hashed by foldhash like the
    /// engine's other name tables: every sent decision looks its campaign up here).
    budgets: HashMap<Arc<str>, Budget, foldhash::fast::FixedState>,
    /// Spent, by campaign name: every campaign that ever had a budget in this run.
    spent: HashMap<Arc<str>, Spent, foldhash::fast::FixedState>,
    rules: Option<Arc<RuleSet>>,
    /// This instance's share of every budget (1: the whole).
    share: f64,
    /// Changed since last published.
    dirty: bool,
}

impl Budgets {
    /// `share`: this instance's share of every budget (1 for the whole; see the module).
    pub fn new(rules: &Arc<RuleSet>, share: f64) -> Budgets {
        let mut b = Budgets { share: share.clamp(0.0, 1.0), ..Budgets::default() };
        b.set_rules(rules);
        b
    }

    /// A limit cut to this instance's share (at least 1).
    fn part(&self, limit: u64) -> u64 {
        match self.share {
            s if s >= 1.0 || s <= 0.0 => limit,
            s => ((limit as f64 * s).floor() as u64).max(1),
        }
    }

    /// The rules in force from here on (start, or a reload at this point of the output).
    pub fn set_rules(&mut self, rules: &Arc<RuleSet>) {
        let part = |b: &Budget| Budget {
            contacts: b.contacts.map(|n| self.part(n)),
            limit_fen: b.limit_fen.map(|n| self.part(n)),
            ..b.clone()
        };
        self.budgets =
            rules.campaigns.iter().filter_map(|c| Some((Arc::from(&*c.name), part(c.budget.as_ref()?)))).collect();
        self.rules = Some(Arc::clone(rules));
        self.dirty = true;
    }

    /// Whether no campaign has a budget (the stage then has nothing to do).
    pub fn is_idle(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Spends the budget of `d`'s campaign on it, or stops it (`budget`) if it would overspend.
    pub fn apply(&mut self, d: &mut Decision) {
        if d.shadow || d.outcome != Outcome::Sent || !d.channel.is_contact() {
            return;
        }
        let Some(b) = self.budgets.get(&d.campaign) else { return };
        let spent = self.spent.entry(Arc::clone(&d.campaign)).or_default();
        let cost = b.cost_of(d);
        let over_contacts = b.contacts.filter(|max| spent.contacts >= *max);
        let over_fen = b.limit_fen.filter(|max| spent.fen.saturating_add(cost) > *max);
        let detail = match (over_contacts, over_fen) {
            (Some(max), _) => format!("budget of campaign {} spent: {max} of {max} contacts", d.campaign),
            (None, Some(max)) => {
                let parts = match d.sms_messages() {
                    n if n > 1 => format!(" ({n} messages)"),
                    _ => String::new(),
                };
                format!(
                    "budget of campaign {} spent: {} of {max} fen, and this {} costs {cost}{parts}",
                    d.campaign, spent.fen, d.channel
                )
            }
            (None, None) => {
                spent.contacts += 1;
                spent.fen = spent.fen.saturating_add(cost);
                self.dirty = true;
                return;
            }
        };
        d.outcome = Outcome::Suppressed(Suppression::Budget);
        d.detail = Some(detail);
    }

    /// What each campaign has spent (for tests and the book).
    pub fn spent(&self, campaign: &str) -> Spent {
        self.spent.get(campaign).copied().unwrap_or_default()
    }

    /// What is spent, for a checkpoint: (campaign, contacts, fen), by name.
    /// Nothing spent saves as nothing (a checkpoint then reads as one from before budgets).
    pub fn save(&self) -> Vec<u8> {
        if self.spent.is_empty() {
            return Vec::new();
        }
        let mut e = crate::codec::Enc::default();
        let mut names: Vec<&Arc<str>> = self.spent.keys().collect();
        names.sort();
        e.u32(names.len() as u32);
        for n in names {
            let s = self.spent[n];
            e.str(n);
            e.u64(s.contacts);
            e.u64(s.fen);
        }
        e.buf
    }

    /// Puts back what [`Budgets::save`] wrote (empty: a checkpoint from before budgets).
    pub fn restore(&mut self, b: &[u8]) -> Result<(), crate::codec::Bad> {
        let mut d = crate::codec::Dec::new(b);
        self.spent.clear();
        if b.is_empty() {
            return Ok(());
        }
        let n = d.len(20)?;
        for _ in 0..n {
            let name: Arc<str> = Arc::from(d.str()?);
            let s = Spent { contacts: d.u64()?, fen: d.u64()? };
            self.spent.insert(name, s);
        }
        self.dirty = true;
        Ok(())
    }

    /// Publishes the campaigns as they stand to `book`, if anything changed since last time.
    pub fn publish(&mut self, book: &CampaignBook) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let Some(rules) = &self.rules else { return };
        let rows = rules
            .campaigns
            .iter()
            .map(|c| CampaignRow {
                name: c.name.to_string(),
                owner: c.owner.as_deref().map(String::from),
                start: c.dates.start_text.as_deref().map(String::from),
                end: c.dates.end_text.as_deref().map(String::from),
                status: c.status.as_str(),
                budget: c.budget.as_ref().map(BudgetRow::of),
                spent: c.budget.as_ref().map(|_| self.spent(&c.name)),
            })
            .collect();
        let mut held = book.0.lock().unwrap_or_else(|p| p.into_inner());
        held.campaigns = rows;
        held.share = if self.share > 0.0 && self.share < 1.0 { Some(self.share) } else { None };
    }
}

/// The campaigns as the write side last saw them, shared with the admin API.
#[derive(Debug, Default)]
pub struct CampaignBook(Mutex<BookView>);

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BookView {
    pub campaigns: Vec<CampaignRow>,
    /// With several instances: this instance's share of each budget (`spent` is its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

impl CampaignBook {
    pub fn view(&self) -> BookView {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One campaign in `GET /v1/campaigns`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CampaignRow {
    pub name: String,
    pub owner: Option<String>,
    /// As written (local, in the engine's offset).
    pub start: Option<String>,
    pub end: Option<String>,
    pub status: &'static str,
    pub budget: Option<BudgetRow>,
    /// Spent so far (campaigns with a budget).
    pub spent: Option<Spent>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct BudgetRow {
    pub contacts: Option<u64>,
    pub cost_fen: std::collections::BTreeMap<&'static str, u64>,
    pub limit_fen: Option<u64>,
}

impl BudgetRow {
    fn of(b: &Budget) -> BudgetRow {
        let cost_fen =
            crate::contact::Channel::ALL.iter().filter_map(|c| Some((c.as_str(), b.cost_fen[*c as usize]?))).collect();
        BudgetRow { contacts: b.contacts, cost_fen, limit_fen: b.limit_fen }
    }
}

#[cfg(test)]
mod tests {
    use super::{Budgets, Spent};
    use std::sync::Arc;

    #[test]
    fn an_instance_counts_against_its_share_of_a_budget() {
        let b = Budgets { share: 1.0 / 3.0, ..Budgets::default() };
        assert_eq!((b.part(200_000), b.part(10), b.part(1)), (66_666, 3, 1), "rounded down, never to 0");
        let whole = Budgets { share: 1.0, ..Budgets::default() };
        assert_eq!(whole.part(7), 7);
    }

    #[test]
    fn what_is_spent_survives_save_and_restore_and_an_old_checkpoint_has_none() {
        let mut b = Budgets::default();
        b.spent.insert(Arc::from("ip_12593"), Spent { contacts: 12, fen: 60 });
        b.spent.insert(Arc::from("冬季流量包"), Spent { contacts: 3, fen: 0 });
        let saved = b.save();
        let mut back = Budgets::default();
        assert!(back.restore(&saved).is_ok());
        assert_eq!(back.spent("ip_12593"), Spent { contacts: 12, fen: 60 });
        assert_eq!(back.spent("冬季流量包").contacts, 3);
        assert!(back.restore(&[]).is_ok() && back.spent("ip_12593") == Spent::default());
        assert!(back.restore(&saved[..saved.len() - 3]).is_err(), "cut short is an error");
    }
}
