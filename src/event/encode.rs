//! [`Event`] -> one JSON line, the inverse of the decoder: what the engine keeps of an event it
//! took whole and then refused (an event from the future is refused after it was decoded, when
//! its raw line is long gone). The id is written out, so the line decodes to the same event and
//! a corrected feed of it decides as the original would have.

use super::*;
use crate::contact::Channel;
use crate::refdata::{Dnd, ProfileChange};
use serde_json::{Map, Value, json};

impl Event {
    /// The event as a JSON line (no newline) that decodes to an equal event; times in `offset`.
    pub fn to_line(&self, offset: chrono::FixedOffset) -> String {
        let mut m = Map::new();
        m.insert("kind".into(), self.kind().as_str().into());
        m.insert("ts".into(), crate::time::format_ts(self.ts, offset).into());
        m.insert("msisdn".into(), self.msisdn.full().into());
        m.insert("id".into(), self.id.as_str().into());
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        match &self.body {
            Body::Usage(u) => {
                put("service", u.service.as_str().into());
                put("direction", u.direction.as_str().into());
                put("scope", u.scope.as_str().into());
                put("duration_s", u.duration_s.into());
                put("volume_kb", u.volume_kb.into());
                put("count", u.count.into());
                put("charge_fen", u.charge_fen.into());
                opt(&mut put, "peer", u.peer.as_ref().map(|s| s.as_str()));
                opt(&mut put, "balance_fen", u.balance_fen);
                opt(&mut put, "cell", u.cell.as_ref().map(|s| s.as_str()));
                opt(&mut put, "via", u.via.as_deref());
            }
            Body::Topup(t) => {
                put("amount_fen", t.amount_fen.into());
                put("channel", t.channel.as_str().into());
                opt(&mut put, "balance_fen", t.balance_fen);
                opt(&mut put, "store", t.store.as_ref().map(|s| s.as_str()));
            }
            Body::Ivr(i) => {
                put("session", i.session.as_str().into());
                put("step", i.step.as_str().into());
                put("hotline", i.hotline.as_str().into());
                opt(&mut put, "node", i.node.as_ref().map(|s| s.as_str()));
            }
            Body::Location(l) => {
                put("cell", l.cell.as_str().into());
                put("trigger", l.trigger.as_str().into());
                opt(&mut put, "country", l.country.as_ref().map(|s| s.as_str()));
            }
            Body::Crm(c) => {
                put("event", c.event.as_str().into());
                put("attrs", Value::Object(c.attrs.clone()));
            }
            Body::Outcome(o) => {
                put("action_id", (*o.action_id).into());
                put("channel", o.channel.as_str().into());
                put("status", o.status.as_str().into());
                put("rule", (*o.rule).into());
                put("campaign", (*o.campaign).into());
                opt(&mut put, "detail", o.detail.as_deref());
            }
            Body::Reply(r) => {
                put("text", (*r.text).into());
                put("to", r.to.as_str().into());
                opt(&mut put, "gateway", r.gateway.as_ref().map(|s| s.as_str()));
            }
            Body::Profile(p) => {
                let (mut set, mut add, mut remove) = (Map::new(), Map::new(), Map::new());
                for c in &p.set {
                    let (to, field, v) = profile_change(c);
                    match to {
                        Section::Set => set.insert(field.into(), v),
                        Section::Add => add.insert(field.into(), v),
                        Section::Remove => remove.insert(field.into(), v),
                    };
                }
                for (k, v) in [("set", set), ("add", add), ("remove", remove)] {
                    if !v.is_empty() {
                        put(k, Value::Object(v));
                    }
                }
                if !p.unset.is_empty() {
                    put("unset", p.unset.iter().map(|f| Value::from(f.as_str())).collect());
                }
            }
        }
        Value::Object(m).to_string()
    }
}

fn opt<V: Into<Value>>(put: &mut impl FnMut(&str, Value), k: &str, v: Option<V>) {
    if let Some(v) = v {
        put(k, v.into());
    }
}

enum Section {
    Set,
    Add,
    Remove,
}

fn list(items: &[Box<str>]) -> Value {
    items.iter().map(|s| Value::from(&**s)).collect()
}

fn profile_change(c: &ProfileChange) -> (Section, &'static str, Value) {
    use ProfileChange as C;
    use Section::*;
    match c {
        C::CustomerId(s) => (Set, "customer_id", (**s).into()),
        C::AccountId(s) => (Set, "account_id", (**s).into()),
        C::Brand(b) => (Set, "brand", b.as_str().into()),
        C::Tier(t) => (Set, "tier", t.as_str().into()),
        C::ArpuFen(n) => (Set, "arpu_fen", (*n).into()),
        C::JoinDate(d) => (Set, "join_date", date(*d)),
        C::Birthday(b) => (Set, "birthday", b.map_or(Value::Null, |(m, d)| format!("{m:02}-{d:02}").into())),
        C::Corporate(b) => (Set, "corporate", (*b).into()),
        C::Foreign(b) => (Set, "foreign", (*b).into()),
        C::Employee(b) => (Set, "employee", (*b).into()),
        C::Services(v) => (Set, "services", list(v)),
        C::AddServices(v) => (Add, "services", list(v)),
        C::RemoveServices(v) => (Remove, "services", list(v)),
        C::Dnd(d) => (Set, "dnd", dnd(*d)),
        C::Status(s) => (Set, "status", s.as_str().into()),
        C::Prefs(v) => (Set, "prefs", list(v)),
        C::AddPrefs(v) => (Add, "prefs", list(v)),
        C::RemovePrefs(v) => (Remove, "prefs", list(v)),
        C::ChannelPref(c) => (Set, "channel_pref", c.map_or(Value::Null, |c| c.as_str().into())),
        C::PackageExpires(d) => (Set, "package_expires", date(*d)),
        C::ContractExpires(d) => (Set, "contract_expires", date(*d)),
        C::LeaseExpires(d) => (Set, "lease_expires", date(*d)),
        C::StayUntil(d) => (Set, "stay_until", date(*d)),
    }
}

fn date(d: Option<chrono::NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| d.format("%Y-%m-%d").to_string().into())
}

fn dnd(d: Dnd) -> Value {
    if d.all {
        return true.into();
    }
    if d.channels == 0 {
        return false.into();
    }
    Channel::ALL.iter().filter(|c| d.channels & c.bit() != 0).map(|c| json!(c.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use crate::event::Decoder;

    /// Every kind, with optional fields present and absent, Chinese text and escapes: the line
    /// written back decodes to the same event (compared field by field through `Debug`).
    #[test]
    fn a_written_event_decodes_to_the_same_event() {
        let lines = [
            r#"{"kind":"usage","ts":"2026-11-25T09:00:00.250+08:00","msisdn":"13800138000","service":"voice","direction":"mo","scope":"long_distance","duration_s":720,"charge_fen":90,"balance_fen":-5,"cell":"460-00-4125-31502","via":"12593","peer":"01088886666"}"#,
            r#"{"kind":"usage","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","service":"data","direction":"mo","scope":"local","volume_kb":40960}"#,
            r#"{"kind":"topup","ts":"2026-11-25T09:00:00Z","msisdn":"13800138000","amount_fen":5000,"balance_fen":5100,"channel":"store","store":"S-12"}"#,
            r#"{"kind":"ivr","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","session":"s-1","step":"menu","node":"1-3-2"}"#,
            r#"{"kind":"location","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","cell":"460-00-1-2","trigger":"attach","country":"JP"}"#,
            r#"{"kind":"crm","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","event":"complaint_closed","attrs":{"topic":"话费\"争议\"","n":[1,2.5,null]}}"#,
            r#"{"kind":"outcome","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","action_id":"a1","channel":"sms","status":"delivered","rule":"r","campaign":"c","detail":"DELIVRD"}"#,
            r#"{"kind":"reply","id":"r00c0ffee","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","text":"退订 \"谢谢\"","to":"10658888","gateway":"smpp"}"#,
            r#"{"kind":"reply","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","text":"","to":"10658888"}"#,
            r#"{"kind":"profile","ts":"2026-11-25T09:00:00+08:00","msisdn":"00138001","set":{"tier":"high","dnd":["sms","call"],"birthday":"02-29","join_date":"2020-01-31","channel_pref":null,"arpu_fen":8800,"corporate":true},"add":{"services":["weather"]},"remove":{"prefs":["music"]},"unset":["customer_id"]}"#,
            r#"{"kind":"profile","ts":"2026-11-25T09:00:00+08:00","msisdn":"13800138000","set":{"dnd":true,"status":"pre_cancel","services":["12593","彩铃"]}}"#,
        ];
        let d = Decoder::default();
        let off = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
        for line in lines {
            let first = d.decode(line.as_bytes(), "t", 1).expect("a line").expect("decodes");
            let written = first.to_line(off);
            let again = d.decode(written.as_bytes(), "t", 1).expect("a line").expect("the written line decodes");
            assert_eq!(format!("{first:?}"), format!("{again:?}"), "{line}\n-> {written}");
        }
    }
}
