//! `tidings diff`: the same stream through two rule packs, and which subscribers gain or lose
//! which contacts.
//!
//! A contact is named by its action id, a hash of rule, subscriber and trigger (and timer due
//! time): the same rule firing on the same event in both packs is the same contact, so the
//! difference is exact, and a lost contact can say what the other pack did with it instead
//! (suppressed, and why; shadow; not decided at all).
//!
//! SubscriberRecord numbers: `diff.json` carries them in full — it is the operator's working file to
//! look subscribers up in, as `decisions.jsonl` is. The HTML page masks them (`138****8000`):
//! a page is what gets forwarded and pasted into tickets; each row carries the action id, which
//! finds the full record in `diff.json` or `decisions.jsonl`. The console prints counts only.

use super::html::{escape, head, script_json};
use crate::contact::{Decision, Outcome};
use crate::engine::Sink;
use crate::time::{Millis, format_ts};
use crate::util::Msisdn;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// One pack's run, as the diff needs it: the contacts made, and the final word on every other
/// candidate by action id.
#[derive(Default)]
pub struct Side {
    sent: HashMap<String, Contact>,
    other: HashMap<String, String>,
    /// Contacts made per rule.
    per_rule: BTreeMap<String, u64>,
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

#[derive(Debug, Serialize, Default)]
pub struct RuleDiff {
    pub rule: String,
    pub old_sent: u64,
    pub new_sent: u64,
    pub gained: u64,
    pub lost: u64,
    pub subscribers_gained: u64,
    pub subscribers_lost: u64,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub old: String,
    pub new: String,
    pub inputs: Vec<String>,
    pub old_sent: u64,
    pub new_sent: u64,
    pub rules: Vec<RuleDiff>,
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

/// Compares two runs over the same input.
pub fn diff(old: &Side, new: &Side, names: (String, String), inputs: Vec<String>, offset: chrono::FixedOffset) -> Diff {
    let gained = changes(new, old, offset);
    let lost = changes(old, new, offset);
    let mut rules: BTreeMap<String, RuleDiff> = BTreeMap::new();
    for (r, n) in &old.per_rule {
        rules.entry(r.clone()).or_default().old_sent = *n;
    }
    for (r, n) in &new.per_rule {
        rules.entry(r.clone()).or_default().new_sent = *n;
    }
    let mut subs: HashMap<(String, bool), std::collections::HashSet<String>> = HashMap::new();
    for (list, is_gain) in [(&gained, true), (&lost, false)] {
        for c in list {
            let r = rules.entry(c.rule.clone()).or_default();
            if is_gain {
                r.gained += 1;
            } else {
                r.lost += 1;
            }
            subs.entry((c.rule.clone(), is_gain)).or_default().insert(c.msisdn.clone());
        }
    }
    for (name, r) in rules.iter_mut() {
        r.rule = name.clone();
        r.subscribers_gained = subs.get(&(name.clone(), true)).map_or(0, |s| s.len() as u64);
        r.subscribers_lost = subs.get(&(name.clone(), false)).map_or(0, |s| s.len() as u64);
    }
    Diff {
        old: names.0,
        new: names.1,
        inputs,
        old_sent: old.sent.len() as u64,
        new_sent: new.sent.len() as u64,
        rules: rules.into_values().filter(|r| r.old_sent + r.new_sent + r.gained + r.lost > 0).collect(),
        gained,
        lost,
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
    o.push_str("<h2>Per rule</h2><table id=\"diff-rules\"><tr><th class=\"l\">rule</th><th>old sends</th><th>new sends</th><th>gained</th><th>lost</th><th>subscribers gaining</th><th>subscribers losing</th></tr>");
    for r in &d.rules {
        let _ = write!(
            o,
            "<tr data-key=\"{}\"><td class=\"l\">{}</td><td data-k=\"old_sent\">{}</td><td data-k=\"new_sent\">{}</td><td data-k=\"gained\">{}</td><td data-k=\"lost\">{}</td><td data-k=\"subscribers_gained\">{}</td><td data-k=\"subscribers_lost\">{}</td></tr>",
            escape(&r.rule),
            escape(&r.rule),
            r.old_sent,
            r.new_sent,
            r.gained,
            r.lost,
            r.subscribers_gained,
            r.subscribers_lost
        );
    }
    o.push_str("</table>\n<p class=\"note\">SubscriberRecord numbers are masked on this page; the action id finds the full record in diff.json.</p>\n");
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
