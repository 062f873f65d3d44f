//! Explain: events, decisions and subscribers in plain words.
//!
//! A shard keeps a plain-words account of everything that happens to one subscriber when asked
//! (`tidings explain`, built from [`describe_event`] and [`explain_line`]), and describes a
//! subscriber as it holds them now for `GET /v1/explain/{msisdn}` ([`describe_subscriber`]).

use crate::contact::Channel;
use crate::contact::{Decision, Outcome};
use crate::event::{Body, Event};
use crate::refdata::RefData;
use crate::rules::RuleSet;
use crate::state::table::Subscriber;
use crate::time::{Millis, format_ts};

/// What an event says, after its kind and id (`: 500 fen by app`).
pub(super) fn describe_event(ev: &Event) -> String {
    match &ev.body {
        Body::Usage(u) => format!(": {} {} {}", u.service, u.direction, u.scope),
        Body::Topup(t) => format!(": {} fen by {}", t.amount_fen, t.channel),
        Body::Ivr(i) => format!(": {} {}", i.step, i.node.as_deref().unwrap_or("")),
        Body::Location(l) => format!(": {} in cell {}", l.trigger, l.cell),
        Body::Crm(c) => format!(": {}", c.event),
        Body::Profile(p) => format!(": {} change(s)", p.set.len() + p.unset.len()),
        Body::Outcome(o) => format!(": {} {} of {}", o.channel, o.status, o.action_id),
        Body::Reply(r) => format!(": to {}: {}", r.to, r.text),
    }
}

/// One decision in plain words, for `explain`.
pub fn explain_line(d: &Decision, offset: chrono::FixedOffset) -> String {
    let what = match d.channel {
        Channel::Sms => "SMS",
        Channel::Call => "call task",
        Channel::Ivr => "IVR offer",
        Channel::Order => "order",
    };
    let mut body = match d.offer() {
        Some(offer) => format!("offer {offer}"),
        None => d.text.as_deref().or(d.script.as_deref()).unwrap_or("").to_owned(),
    };
    // Where a call goes, and what a reply to an SMS will be about.
    if let Some(q) = d.queue.as_deref().filter(|_| d.channel == Channel::Call) {
        body = format!("[queue {q}] {body}");
    }
    if let Some(a) = &d.about {
        body = format!("[about {a}] {body}");
    }
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

/// One subscriber as the engine holds them now (`None`: not held), for
/// `GET /v1/explain/{msisdn}`: the record, the state rules read (balance, place, windows),
/// pending timers, the contact history caps count and the refusals made by reply (with the
/// reply that made each). The number itself is left to the caller
/// (masked).
pub fn describe_subscriber(
    e: Option<&Subscriber>,
    rules: &RuleSet,
    refdata: &RefData,
    offset: chrono::FixedOffset,
    now: Millis,
) -> serde_json::Value {
    use serde_json::json;
    let ts = |t: Option<Millis>| t.map(|t| format_ts(t, offset));
    let Some(e) = e else {
        return json!({ "known": false, "state": null });
    };
    let (sub, st) = (&*e.sub, &*e.state);
    let windows: Vec<serde_json::Value> = rules
        .aggs
        .iter()
        .enumerate()
        .map(|(slot, a)| {
            let value = st.agg_value_window(slot as u32, now, a.bucket, a.window);
            let mut w = json!({
                "kind": a.kind.as_str(),
                "window": crate::time::format_duration(a.window),
                "value": value,
            });
            // A count that keeps only its newest events knows "this many or more".
            let cap = rules.agg_caps.get(slot).copied().unwrap_or(0);
            if cap > 0 && value >= cap {
                w["at_least"] = true.into();
            }
            w
        })
        .filter(|w| w["value"] != 0)
        .collect();
    // Distinct counts: how many different values of the field within the window.
    let distinct: Vec<serde_json::Value> = rules
        .distinct
        .iter()
        .enumerate()
        .map(|(slot, d)| {
            let field = crate::rules::expr::schema::FIELDS
                .iter()
                .find(|f| f.2 == d.field)
                .map_or("", |f| f.0.trim_start_matches("event."));
            json!({
                "kind": d.kind.as_str(),
                "field": field,
                "window": crate::time::format_duration(d.window),
                "value": st.distinct_count(slot as u32, now, d.window),
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
                "kept": t.kept.iter().map(|k| (k.path.to_string(), crate::rules::expr::kept::to_json(k))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let journeys: Vec<serde_json::Value> = st
        .journeys()
        .iter()
        .map(|j| {
            json!({
                "journey": rules.journey_of(j.step).map(|d| d.name.to_string()),
                "step": rules.steps.get(j.step as usize).map(|s| s.name.to_string()),
                "since": format_ts(j.since, offset),
                "due": format_ts(j.due, offset),
                "kept": j.kept.iter().map(|(k, v)| (k.to_string(), json!(v.as_ref()))).collect::<serde_json::Map<_, _>>(),
                "said": rules.describe_journey(j, offset),
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
                // What came of it, as `suppress_after` counts it.
                "answered": c.has(crate::state::ContactRec::ANSWERED),
                "refused": c.has(crate::state::ContactRec::REFUSED),
                "failed": c.has(crate::state::ContactRec::FAILED),
            })
        })
        .collect();
    // Refusals by reply: this run's (the state) and earlier runs' (the journal), each with the
    // reply that made it.
    let journaled = refdata.optout_journal.read(sub.msisdn).iter().map(|o| (o, "journal"));
    let optouts: Vec<serde_json::Value> = st
        .optouts()
        .iter()
        .map(|o| (o, "state"))
        .chain(journaled)
        .map(|(o, from)| {
            json!({
                "at": format_ts(o.ts, offset),
                "scope": o.scope.as_str(),
                "campaign": o.campaign.as_deref(),
                "reply": o.reply.as_ref(),
                "said": o.describe(),
                "from": from,
            })
        })
        .collect();
    json!({
        "known": sub.known(),
        "profile": {
            "brand": sub.brand.as_str(),
            "tier": sub.tier.as_str(),
            "status": sub.status.as_str(),
            "dnd": sub.dnd().any(),
        },
        "state": {
            "balance_fen": st.balance(),
            "last_event_at": ts(st.last_event_at()),
            "last_usage_at": ts(st.last_usage_at()),
            "last_topup": st.last_topup().map(|(t, fen)| json!({"at": format_ts(t, offset), "amount_fen": fen})),
            "cell": st.cell_id_str(refdata),
            "cell_since": ts(st.cell_since()),
            "roaming_country": st.country(),
            "ivr_last_node": st.ivr_last_node(false),
            "windows": windows,
            "distinct": distinct,
        },
        "timers": timers,
        "journeys": journeys,
        "derived": rules.describe_derived(st),
        "contacts": contacts,
        "optouts": optouts,
    })
}
