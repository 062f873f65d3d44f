//! `tidings diff`: the same stream through two rule packs, and which subscribers gain or lose
//! which contacts.
//!
//! A contact is named by its action id, a hash of rule, subscriber and trigger (and timer due
//! time): the same rule firing on the same event in both packs is the same contact, so the
//! difference is exact, and a lost contact can say what the other pack did with it instead
//! (suppressed, and why; shadow; not decided at all).
//!
//! Subscriber numbers: `diff.json` carries them in full — it is the operator's working file to
//! look subscribers up in, as `decisions.jsonl` is. The HTML page masks them (`138****8000`):
//! a page is what gets forwarded and pasted into tickets; each row carries the action id, which
//! finds the full record in `diff.json` or `decisions.jsonl`. The console prints counts only.

use super::html::{escape, head, script_json};
use crate::contact::{Decision, Outcome};
use crate::engine::{EngineOptions, Input, Sink};
use crate::refdata::{RefData, Subscribers};
use crate::rules::RuleSet;
use crate::time::{Millis, format_ts};
use crate::util::Msisdn;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// One pack's run, as the diff needs it: the contacts made, and the final word on every other
/// candidate by action id.
#[derive(Default)]
pub struct Side {
    sent: HashMap<String, Contact>,
    other: HashMap<String, String>,
    /// Contacts made per rule and per campaign.
    per_rule: BTreeMap<String, u64>,
    per_campaign: BTreeMap<String, u64>,
}

#[derive(Clone, Debug)]
struct Contact {
    msisdn: Msisdn,
    rule: String,
    campaign: String,
    channel: &'static str,
    ts: Millis,
}

impl Sink for Side {
    fn decision(&mut self, d: &Decision) -> std::io::Result<()> {
        if d.is_sent() {
            *self.per_rule.entry(d.rule_name.to_string()).or_default() += 1;
            *self.per_campaign.entry(d.campaign.to_string()).or_default() += 1;
            self.other.remove(&d.id);
            self.sent.insert(
                d.id.clone(),
                Contact {
                    msisdn: d.msisdn,
                    rule: d.rule_name.to_string(),
                    campaign: d.campaign.to_string(),
                    channel: d.channel.as_str(),
                    ts: d.ts,
                },
            );
            return Ok(());
        }
        let what = match (d.outcome, d.shadow) {
            (Outcome::Sent, _) => "shadow rule: would be sent, not sent".to_string(),
            (Outcome::Suppressed(r), s) => {
                format!(
                    "{}suppressed: {} — {}",
                    if s { "shadow, " } else { "" },
                    r.as_str(),
                    d.detail.as_deref().unwrap_or("")
                )
            }
            (Outcome::Deferred(_), _) => "held for quiet hours, not decided by the end of the input".to_string(),
        };
        self.other.insert(d.id.clone(), what);
        Ok(())
    }
}

/// A contact one pack makes and the other does not.
#[derive(Debug, Serialize)]
pub struct Change {
    pub id: String,
    /// Full number: see the module comment.
    pub msisdn: String,
    pub rule: String,
    pub campaign: String,
    pub channel: &'static str,
    pub ts: String,
    /// What the other pack did with this candidate.
    pub other: String,
}

/// What two packs sent of one rule's or campaign's contacts, and how they differ.
#[derive(Debug, Serialize, Default)]
pub struct Counts {
    pub old_sent: u64,
    pub new_sent: u64,
    pub gained: u64,
    pub lost: u64,
    pub subscribers_gained: u64,
    pub subscribers_lost: u64,
}

#[derive(Debug, Serialize, Default)]
pub struct RuleDiff {
    pub rule: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// The same counts per campaign.
#[derive(Debug, Serialize, Default)]
pub struct CampaignDiff {
    pub campaign: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub old: String,
    pub new: String,
    pub inputs: Vec<String>,
    pub old_sent: u64,
    pub new_sent: u64,
    pub rules: Vec<RuleDiff>,
    pub campaigns: Vec<CampaignDiff>,
    /// What a hot reload from the old pack to the new one would drop and start afresh (set by
    /// the caller, which has the two rule sets).
    pub reload: crate::rules::carry::Carry,
    /// Contacts the new pack makes and the old does not, in time order.
    pub gained: Vec<Change>,
    /// Contacts the old pack makes and the new does not, in time order.
    pub lost: Vec<Change>,
}

fn changes(from: &Side, to: &Side, offset: chrono::FixedOffset) -> Vec<Change> {
    let mut v: Vec<(&String, &Contact)> = from.sent.iter().filter(|(id, _)| !to.sent.contains_key(*id)).collect();
    v.sort_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)));
    v.into_iter()
        .map(|(id, c)| Change {
            id: id.clone(),
            msisdn: c.msisdn.full(),
            rule: c.rule.clone(),
            campaign: c.campaign.clone(),
            channel: c.channel,
            ts: format_ts(c.ts, offset),
            other: to
                .other
                .get(id)
                .cloned()
                .unwrap_or_else(|| "not a candidate: the rule did not fire (or is not in the pack)".into()),
        })
        .collect()
}

/// One row of counts (a rule's or a campaign's) while it is being added up.
#[derive(Default)]
struct Tally {
    old_sent: u64,
    new_sent: u64,
    gained: u64,
    lost: u64,
    subscribers_gained: std::collections::HashSet<String>,
    subscribers_lost: std::collections::HashSet<String>,
}

impl Tally {
    fn counts(&self) -> Counts {
        Counts {
            old_sent: self.old_sent,
            new_sent: self.new_sent,
            gained: self.gained,
            lost: self.lost,
            subscribers_gained: self.subscribers_gained.len() as u64,
            subscribers_lost: self.subscribers_lost.len() as u64,
        }
    }
}

/// Counts by the key `key` picks (rule or campaign): sends in each run, contacts gained and lost
/// and the subscribers they go to; rows with nothing in them left out.
fn tally(
    sent: (&BTreeMap<String, u64>, &BTreeMap<String, u64>),
    gained: &[Change],
    lost: &[Change],
    key: fn(&Change) -> &str,
) -> BTreeMap<String, Tally> {
    let mut rows: BTreeMap<String, Tally> = BTreeMap::new();
    for (k, n) in sent.0 {
        rows.entry(k.clone()).or_default().old_sent = *n;
    }
    for (k, n) in sent.1 {
        rows.entry(k.clone()).or_default().new_sent = *n;
    }
    for c in gained {
        let r = rows.entry(key(c).to_string()).or_default();
        r.gained += 1;
        r.subscribers_gained.insert(c.msisdn.clone());
    }
    for c in lost {
        let r = rows.entry(key(c).to_string()).or_default();
        r.lost += 1;
        r.subscribers_lost.insert(c.msisdn.clone());
    }
    rows.retain(|_, r| r.old_sent + r.new_sent + r.gained + r.lost > 0);
    rows
}

/// Compares two runs over the same input.
pub fn diff(old: &Side, new: &Side, names: (String, String), inputs: Vec<String>, offset: chrono::FixedOffset) -> Diff {
    let gained = changes(new, old, offset);
    let lost = changes(old, new, offset);
    let rules = tally((&old.per_rule, &new.per_rule), &gained, &lost, |c| &c.rule)
        .into_iter()
        .map(|(rule, t)| RuleDiff { rule, counts: t.counts() })
        .collect();
    let campaigns = tally((&old.per_campaign, &new.per_campaign), &gained, &lost, |c| &c.campaign)
        .into_iter()
        .map(|(campaign, t)| CampaignDiff { campaign, counts: t.counts() })
        .collect();
    Diff {
        old: names.0,
        new: names.1,
        inputs,
        old_sent: old.sent.len() as u64,
        new_sent: new.sent.len() as u64,
        rules,
        campaigns,
        reload: Default::default(),
        gained,
        lost,
    }
}

/// What a pack is run with to be compared with another: the reference data, the subscribers
/// and the engine options (one shard, the run's policy and time settings). `tidings diff` and
/// the deploy flow's backtest both run their two packs through [`Replay::side`].
pub struct Replay<'a> {
    pub refdata: Arc<RefData>,
    pub subscribers: &'a Subscribers,
    pub opts: &'a EngineOptions,
    /// Raised to stop a long run early (Ctrl-C).
    pub stop: &'a AtomicBool,
}

impl Replay<'_> {
    /// One pack's run over `input`, as the diff needs it.
    pub fn side<I: Into<Input>>(&self, input: impl Iterator<Item = I>, rules: Arc<RuleSet>) -> std::io::Result<Side> {
        let mut side = Side::default();
        let subs = self.subscribers.clone();
        crate::engine::run(input, rules, Arc::clone(&self.refdata), subs, self.opts, &mut side, self.stop)?;
        Ok(side)
    }
}

/// Rows of the contact lists the page shows at most (the JSON has them all).
pub const PAGE_ROWS: usize = 2000;

/// The diff as a self-contained HTML page (numbers masked; see the module comment).
pub fn render(d: &Diff) -> String {
    let title = format!("tidings diff: {} → {}", d.old, d.new);
    let mut o = String::new();
    head(&mut o, &title);
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"meta\">input {} · old pack sends {} · new pack sends {} · gained {} · lost {}</p>",
        escape(&title),
        escape(&d.inputs.join(", ")),
        d.old_sent,
        d.new_sent,
        d.gained.len(),
        d.lost.len()
    );
    let head = |what: &str| {
        format!(
            "<th class=\"l\">{what}</th><th>old sends</th><th>new sends</th><th>gained</th><th>lost</th><th>subscribers gaining</th><th>subscribers losing</th></tr>"
        )
    };
    let row = |o: &mut String, key: &str, c: &Counts| {
        let _ = write!(
            o,
            "<tr data-key=\"{}\"><td class=\"l\">{}</td><td data-k=\"old_sent\">{}</td><td data-k=\"new_sent\">{}</td><td data-k=\"gained\">{}</td><td data-k=\"lost\">{}</td><td data-k=\"subscribers_gained\">{}</td><td data-k=\"subscribers_lost\">{}</td></tr>",
            escape(key),
            escape(key),
            c.old_sent,
            c.new_sent,
            c.gained,
            c.lost,
            c.subscribers_gained,
            c.subscribers_lost
        );
    };
    let _ = write!(o, "<h2>Per rule</h2><table id=\"diff-rules\"><tr>{}", head("rule"));
    for r in &d.rules {
        row(&mut o, &r.rule, &r.counts);
    }
    let _ = write!(o, "</table><h2>Per campaign</h2><table id=\"diff-campaigns\"><tr>{}", head("campaign"));
    for c in &d.campaigns {
        row(&mut o, &c.campaign, &c.counts);
    }
    o.push_str("</table>\n<p class=\"note\">Subscriber numbers are masked on this page; the action id finds the full record in diff.json.</p>\n");
    let reload = d.reload.lines();
    let _ = write!(o, "<h2>At a reload from the old pack to the new</h2><ul id=\"diff-reload\">");
    if reload.is_empty() {
        o.push_str("<li>everything carries over: no journey step, timer, derived attribute or window is dropped</li>");
    }
    for l in &reload {
        let class = if l.starts_with("warning: ") { " class=\"warn\"" } else { "" };
        let _ = write!(o, "<li{class}>{}</li>", escape(l));
    }
    o.push_str("</ul>\n");
    for (id, label, list) in [
        ("diff-gained", "Contacts gained (new pack only)", &d.gained),
        ("diff-lost", "Contacts lost (old pack only)", &d.lost),
    ] {
        let _ = write!(o, "<h2>{label}: {}</h2>", list.len());
        if list.len() > PAGE_ROWS {
            let _ =
                write!(o, "<p class=\"note\">The first {PAGE_ROWS} are listed; diff.json has all {}.</p>", list.len());
        }
        let _ = write!(
            o,
            "<table id=\"{id}\"><tr><th class=\"l\">time</th><th class=\"l\">subscriber</th><th class=\"l\">rule</th><th class=\"l\">campaign</th><th class=\"l\">channel</th><th class=\"l\">action id</th><th class=\"l\">the other pack</th></tr>"
        );
        for c in list.iter().take(PAGE_ROWS) {
            let masked = Msisdn::parse(&c.msisdn).map_or_else(|| "****".into(), |m| m.masked());
            let _ = write!(
                o,
                "<tr data-key=\"{}\" data-rule=\"{}\"><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                escape(&c.id),
                escape(&c.rule),
                escape(&c.ts),
                escape(&masked),
                escape(&c.rule),
                escape(&c.campaign),
                c.channel,
                escape(&c.id),
                escape(&c.other)
            );
        }
        o.push_str("</table>\n");
    }
    // The page's own figures without numbers: per-rule counts only.
    let _ = write!(
        o,
        "<script type=\"application/json\" id=\"diff-data\">{}</script>\n</body></html>\n",
        script_json(&d.rules)
    );
    o
}
