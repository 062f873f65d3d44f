//! `GET /v1/funnel`: per local day, per rule and per campaign, the funnel the engine counts
//! live (see `engine::funnel` for what each stage counts and where): triggered → matched →
//! suppressed by each reason → sent → delivered → replied / answered → accepted.
//!
//! Any authenticated role may read it. Optional query parameters: `from` and `to` (local days
//! `YYYY-MM-DD`, inclusive), `campaign` and `rule` (names). The answer, days ascending, rules
//! sorted by name, `campaign` null for a rule that names none, `suppressed` only the reasons
//! with a count (as `decisions.jsonl` names them); the campaigns' rows add up their live rules
//! of that day (after the filters):
//!
//! ```json
//! {"days":[{"day":"2026-12-03",
//!           "rules":[{"rule":"r1","campaign":"c1","triggered":10,"matched":4,
//!                     "suppressed":{"quiet_hours":1},"sent":3,"delivered":2,"replied":1,
//!                     "answered":0,"accepted":1}],
//!           "campaigns":[{"campaign":"c1","triggered":10,"matched":4,"suppressed":{"quiet_hours":1},
//!                         "sent":3,"delivered":2,"replied":1,"answered":0,"accepted":1}]}]}
//! ```

use crate::contact::Suppression;
use crate::engine::funnel::{NAMED, Row, STAGES, Tally, suppressed};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

/// What a request asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    /// Local days, inclusive (days since 1970-01-01).
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub campaign: Option<String>,
    pub rule: Option<String>,
}

impl Query {
    /// The query of a request's parameters; an unknown one or a bad day is an error.
    pub fn parse(params: &HashMap<String, String>) -> Result<Query, String> {
        let mut q = Query::default();
        for (k, v) in params {
            match k.as_str() {
                "from" => q.from = Some(day_number(v).map_err(|e| format!("from: {e}"))?),
                "to" => q.to = Some(day_number(v).map_err(|e| format!("to: {e}"))?),
                "campaign" => q.campaign = Some(v.clone()),
                "rule" => q.rule = Some(v.clone()),
                _ => return Err(format!("unknown parameter `{k}` (from, to, campaign, rule)")),
            }
        }
        if let (Some(f), Some(t)) = (q.from, q.to) {
            if f > t {
                return Err("from is after to".into());
            }
        }
        Ok(q)
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01.
fn day_number(s: &str) -> Result<i64, String> {
    use chrono::Datelike;
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a day (YYYY-MM-DD, e.g. 2026-12-03)"))?;
    Ok(crate::time::days_from_civil(i64::from(d.year()), i64::from(d.month()), i64::from(d.day())))
}

fn day_text(day: i64) -> String {
    let (y, m, d) = crate::time::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The stages of a row as the answer names them, after `head` (the rule or campaign).
fn counts(mut head: Map<String, Value>, r: &Row) -> Value {
    for (name, i) in NAMED {
        head.insert(name.into(), json!(r[i]));
    }
    let by_reason: Map<String, Value> = Suppression::ALL
        .iter()
        .filter(|s| r[suppressed(**s)] != 0)
        .map(|s| (s.as_str().to_string(), json!(r[suppressed(*s)])))
        .collect();
    head.insert("suppressed".into(), Value::Object(by_reason));
    Value::Object(head)
}

/// The answer to `q` from `t` (see the module).
pub fn view(t: &Tally, q: &Query) -> Value {
    let mut days: BTreeMap<i64, (Vec<Value>, BTreeMap<&str, Row>)> = BTreeMap::new();
    let mut rows: Vec<_> = t
        .rows()
        .filter(|(day, name, info, r)| {
            q.from.is_none_or(|f| *day >= f)
                && q.to.is_none_or(|to| *day <= to)
                && q.rule.as_deref().is_none_or(|want| &***name == want)
                && q.campaign.as_deref().is_none_or(|want| info.campaign.as_deref() == Some(want))
                && r.iter().any(|n| *n != 0)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (day, name, info, r) in rows {
        let (rules, campaigns) = days.entry(day).or_default();
        let mut head = Map::new();
        head.insert("rule".into(), json!(&**name));
        head.insert("campaign".into(), json!(info.campaign.as_deref()));
        rules.push(counts(head, r));
        if let (Some(c), false) = (info.campaign.as_deref(), info.shadow) {
            let sum = campaigns.entry(c).or_insert([0; STAGES]);
            for (a, b) in sum.iter_mut().zip(r) {
                *a += b;
            }
        }
    }
    let days: Vec<Value> = days
        .into_iter()
        .map(|(day, (rules, campaigns))| {
            let campaigns: Vec<Value> = campaigns
                .iter()
                .map(|(c, r)| {
                    let mut head = Map::new();
                    head.insert("campaign".into(), json!(c));
                    counts(head, r)
                })
                .collect();
            json!({"day": day_text(day), "rules": rules, "campaigns": campaigns})
        })
        .collect();
    json!({ "days": days })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::funnel::{SENT, TRIGGERED};

    /// Rules `a` and `b` in campaign `c`, `s` a shadow rule of it, `n` with no campaign; each
    /// with `i + 1` triggered and sent on the first day, `a` also on the next.
    fn tally() -> Tally {
        let rule = |name: &str, extra: &str| {
            format!(
                "- rule: {name}\n  on: [crm]\n  condition: true\n  action: {{ channel: sms, template: t }}\n{extra}"
            )
        };
        let pack = [
            rule("b", "  campaign: c\n"),
            rule("a", "  campaign: c\n"),
            rule("s", "  campaign: c\n  mode: shadow\n"),
            rule("n", ""),
        ]
        .concat();
        let loaded = crate::rules::compile(vec![("t.yaml".into(), pack)], None, &crate::rules::LoadOptions::default());
        let rules = loaded.rules.expect("the pack compiles");
        let mut t = Tally::new(10);
        let map = t.learn(&rules);
        let row = |n: u64| {
            let mut r = [0; STAGES];
            (r[TRIGGERED], r[SENT]) = (n, n);
            r[suppressed(Suppression::Cap)] = n / 2;
            r
        };
        let rows: Vec<Row> = (1..=4).map(row).collect();
        t.add_rows(&map, 20_425, &rows);
        t.add_rows(&map[1..2], 20_426, &[row(5)]);
        t
    }

    #[test]
    fn the_view_sorts_rules_adds_live_rules_into_their_campaign_and_filters() {
        let t = tally();
        let all = view(&t, &Query::default());
        let days = all["days"].as_array().expect("days");
        assert_eq!(days.len(), 2);
        assert_eq!(days[0]["day"], "2025-12-03");
        let rules: Vec<&str> =
            days[0]["rules"].as_array().expect("rules").iter().map(|r| r["rule"].as_str().unwrap_or("")).collect();
        assert_eq!(rules, ["a", "b", "n", "s"]);
        assert_eq!(days[0]["rules"][2]["campaign"], Value::Null, "n names no campaign");
        assert_eq!(days[0]["rules"][0]["suppressed"], json!({"cap": 1}));
        assert_eq!(days[0]["rules"][1]["suppressed"], json!({}), "only reasons with a count");
        // b (1) and a (2): the shadow rule s (3) is not in its campaign's row.
        let c = &days[0]["campaigns"];
        assert_eq!(
            c,
            &json!([{"campaign": "c", "triggered": 3, "matched": 0, "suppressed": {"cap": 1}, "sent": 3,
            "delivered": 0, "replied": 0, "answered": 0, "accepted": 0}])
        );
        assert_eq!(days[1]["rules"].as_array().map(Vec::len), Some(1));
        let q = Query { from: Some(20_426), ..Query::default() };
        assert_eq!(view(&t, &q)["days"].as_array().map(Vec::len), Some(1));
        let q = Query { rule: Some("n".into()), ..Query::default() };
        let one = view(&t, &q);
        assert_eq!(one["days"][0]["rules"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["days"][0]["campaigns"], json!([]));
        let q = Query { campaign: Some("c".into()), to: Some(20_425), ..Query::default() };
        let c = view(&t, &q);
        assert_eq!(c["days"][0]["rules"].as_array().map(Vec::len), Some(3));
        assert_eq!(c["days"][0]["rules"][0]["matched"], 0);
    }

    #[test]
    fn a_query_reads_its_days_and_refuses_what_it_does_not_know() {
        let p =
            |pairs: &[(&str, &str)]| Query::parse(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let q = p(&[("from", "2026-12-03"), ("to", "2026-12-04"), ("rule", "r1")]).expect("a good query");
        assert_eq!(q.to.zip(q.from).map(|(t, f)| t - f), Some(1));
        assert_eq!(day_text(q.from.unwrap_or_default()), "2026-12-03");
        assert_eq!(q.rule.as_deref(), Some("r1"));
        assert!(p(&[("from", "2026-13-01")]).unwrap_err().contains("not a day"));
        assert!(p(&[("day", "2026-12-01")]).unwrap_err().contains("unknown parameter `day`"));
        assert!(p(&[("from", "2026-12-05"), ("to", "2026-12-04")]).is_err());
    }
}
