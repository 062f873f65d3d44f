//! Replies in the engine, in event time: what a reply answers (`event.in_reply_to`), what its
//! keyword is, unsubscribing by reply (each default keyword, full-width and lower case, each
//! scope) taking effect from the reply's own time, and the footer every marketing SMS carries.

use super::support::*;
use tidings::contact::{Channel, OptOutScope, Outcome, Suppression};
use tidings::engine::EngineOptions;

const RULES: &str = r#"
- rule: offer
  on: [crm]
  condition: event.event == "offer"
  action: { channel: sms, template: "流量包优惠，回复KT开通。" }
  campaign: data_offer
  policy: { quiet_hours: ignore }
- rule: music
  on: [crm]
  condition: event.event == "music"
  action: { channel: sms, template: "音乐俱乐部会员专享。" }
  campaign: music_club
  policy: { quiet_hours: ignore, sender: "10658888" }
- rule: bill
  on: [crm]
  condition: event.event == "bill"
  action: { channel: sms, template: "您的账单已出。" }
  campaign: billing
  policy: { transactional: true, quiet_hours: ignore }
- rule: callback
  on: [crm]
  condition: event.event == "call"
  action: { channel: call, script: "回访", queue: care }
  campaign: retention
  policy: { quiet_hours: ignore }
- rule: confirm
  on: [reply]
  condition: exists(event.unsubscribe)
  action: { channel: sms, template: "退订成功" }
  campaign: replies
  priority: 100
  policy: { transactional: true, ignore_dnd: true, quiet_hours: ignore }
"#;

fn crm(time: &str, what: &str) -> String {
    ev("crm", time, &format!(r#""event":"{what}","attrs":{{}}"#))
}

fn reply(time: &str, id: &str, text: &str, to: &str) -> String {
    let text = serde_json::to_string(text).unwrap();
    ev("reply", time, &format!(r#""id":"{id}","text":{text},"to":"{to}","gateway":"cmpp""#))
}

/// (rule, time, outcome, detail) of every decision.
fn decided(r: &Run) -> Vec<(String, String, Outcome, String)> {
    r.decisions
        .iter()
        .map(|d| {
            let at = tidings::time::format_ts(d.ts, EngineOptions::default().offset);
            (d.rule_name.to_string(), at[11..19].to_string(), d.outcome, d.detail.clone().unwrap_or_default())
        })
        .collect()
}

#[test]
fn each_default_keyword_in_any_width_or_case_refuses_marketing_at_once_and_bills_still_go() {
    let variants = [
        "TD",
        "td",
        "Td",
        "ＴＤ",
        "ｔｄ",
        "T",
        "t",
        "R",
        "r",
        "Ｒ",
        "退订",
        "QXTD",
        "qxtd",
        "ＱＸＴＤ",
        " td 谢谢",
        "退订　谢谢",
    ];
    for text in variants {
        let lines = vec![
            crm("09:00:00", "offer"),
            reply("10:00:00", "r1", text, "10086"),
            crm("10:00:01", "offer"),
            crm("10:00:01", "music"),
            crm("10:00:01", "bill"),
            crm("10:00:02", "call"),
        ];
        let r = run(RULES, &[SUB], &lines);
        let got: Vec<(String, String, Outcome)> = decided(&r).into_iter().map(|(a, b, c, _)| (a, b, c)).collect();
        let dnd = Outcome::Suppressed(Suppression::Dnd);
        let want = [
            ("offer", "09:00:00", Outcome::Sent),
            ("confirm", "10:00:00", Outcome::Sent),
            ("offer", "10:00:01", dnd),
            ("music", "10:00:01", dnd),
            ("bill", "10:00:01", Outcome::Sent),
            // Marketing SMS were refused, not the call centre.
            ("callback", "10:00:02", Outcome::Sent),
        ];
        let want: Vec<(String, String, Outcome)> =
            want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), *c)).collect();
        assert_eq!(got, want, "reply {text:?}");
    }
}

#[test]
fn words_that_only_start_like_a_keyword_refuse_nothing() {
    for text in ["TDD", "KT12593", "tomorrow", "退订了吗", "1"] {
        let lines = vec![reply("10:00:00", "r1", text, "10086"), crm("10:00:01", "offer")];
        let r = run(RULES, &[SUB], &lines);
        let got = decided(&r);
        assert_eq!(got.len(), 1, "{text:?}: {got:?}");
        assert_eq!((got[0].0.as_str(), got[0].2), ("offer", Outcome::Sent), "{text:?}");
    }
}

/// The issue's test: a reply `TD` at 10:00:00; a marketing SMS due at 10:00:01 is suppressed
/// with reason `dnd` and a detail naming the reply; a transactional message still goes. One
/// second earlier, the marketing SMS went.
#[test]
fn a_marketing_sms_one_second_after_td_is_suppressed_naming_the_reply_and_one_a_second_before_went() {
    let lines = vec![
        crm("09:59:59", "offer"),
        reply("10:00:00", "mo-4711", "TD", "10086"),
        crm("10:00:01", "offer"),
        crm("10:00:01", "bill"),
    ];
    let r = run(RULES, &[SUB], &lines);
    let got = decided(&r);
    assert_eq!(got[0].0, "offer");
    assert_eq!(got[0].2, Outcome::Sent);
    assert_eq!(got[1].0, "confirm");
    let (rule, at, outcome, detail) = &got[2];
    assert_eq!((rule.as_str(), at.as_str(), *outcome), ("offer", "10:00:01", Outcome::Suppressed(Suppression::Dnd)));
    assert_eq!(detail, "opted out of marketing SMS by reply \"TD\" to 10086 (event mo-4711)");
    assert_eq!((got[3].0.as_str(), got[3].2), ("bill", Outcome::Sent));
}

#[test]
fn zero_zero_zero_zero_refuses_every_non_transactional_contact_calls_too() {
    let lines = vec![
        reply("10:00:00", "r1", "０００0", "10086"),
        crm("10:00:01", "offer"),
        crm("10:00:02", "call"),
        crm("10:00:03", "bill"),
    ];
    let r = run(RULES, &[SUB], &lines);
    let got: Vec<(String, Outcome)> = decided(&r).into_iter().map(|(a, _, c, _)| (a, c)).collect();
    let dnd = Outcome::Suppressed(Suppression::Dnd);
    let want: Vec<(String, Outcome)> =
        [("confirm", Outcome::Sent), ("offer", dnd), ("callback", dnd), ("bill", Outcome::Sent)]
            .iter()
            .map(|(a, c)| (a.to_string(), *c))
            .collect();
    assert_eq!(got, want);
    assert!(r.decisions[2].detail.as_deref().unwrap_or("").contains("every non-transactional contact"));
}

/// With `scope = "campaign"`, a reply that answers an SMS refuses that SMS's campaign only; a
/// reply that answers nothing (sent to a number no SMS came from) refuses all marketing.
#[test]
fn scope_campaign_refuses_the_answered_campaign_and_a_reply_to_nothing_refuses_all_marketing() {
    let mut opts = no_footer();
    opts.policy.unsubscribe.scope = OptOutScope::Campaign;
    let lines = vec![
        crm("09:00:00", "music"),
        reply("10:00:00", "r1", "TD", "10658888"),
        crm("10:00:01", "music"),
        crm("10:00:02", "offer"),
    ];
    let r = run_with(RULES, &[SUB], &lines, opts.clone());
    let got: Vec<(String, Outcome, String)> = decided(&r).into_iter().map(|(a, _, c, d)| (a, c, d)).collect();
    assert_eq!(got[2].0, "music");
    assert_eq!(got[2].1, Outcome::Suppressed(Suppression::Dnd));
    assert!(got[2].2.starts_with("opted out of campaign music_club by reply \"TD\" to 10658888"), "{}", got[2].2);
    assert_eq!((got[3].0.as_str(), got[3].1), ("offer", Outcome::Sent), "another campaign still goes");

    // The music SMS came from 10658888: a TD to 10086 answers nothing.
    let lines = vec![
        crm("09:00:00", "music"),
        reply("10:00:00", "r1", "TD", "10086"),
        crm("10:00:01", "music"),
        crm("10:00:02", "offer"),
    ];
    let r = run_with(RULES, &[SUB], &lines, opts);
    let got: Vec<(String, Outcome)> = decided(&r).into_iter().map(|(a, _, c, _)| (a, c)).collect();
    let dnd = Outcome::Suppressed(Suppression::Dnd);
    assert_eq!(got[2..], [("music".to_string(), dnd), ("offer".to_string(), dnd)]);
}

/// `event.in_reply_to` names the latest SMS sent from the number the reply went to, within
/// the window (72 h by default); `event.keyword` is the normalised first word.
#[test]
fn a_reply_is_tied_to_the_latest_sms_from_the_number_it_was_sent_to_within_the_window() {
    let rules = format!(
        "{RULES}
- rule: echo
  on: [reply]
  condition: not exists(event.unsubscribe)
  action: {{ channel: sms, template: \"{{event.keyword}}|{{event.in_reply_to.known}}|{{event.in_reply_to.rule|default:-}}|{{event.in_reply_to.campaign|default:-}}|{{event.in_reply_to.age|minutes|default:-}}|{{event.in_reply_to.action_id|default:-}}\" }}
  campaign: replies
  policy: {{ transactional: true, quiet_hours: ignore }}
"
    );
    let lines = vec![
        crm("2026-11-20T09:00:00+08:00", "offer"),
        crm("2026-11-24T08:00:00+08:00", "offer"),
        crm("2026-11-24T09:00:00+08:00", "music"),
        // To 10086: the 08:00 offer (the music SMS came from 10658888).
        reply("2026-11-24T09:30:00+08:00", "r1", "ｋｔ12593 好的", "10086"),
        // To 10658888: the music SMS.
        reply("2026-11-24T09:45:00+08:00", "r2", "hy", "10658888"),
        // Four days after the last 10086 SMS: past the window.
        reply("2026-11-28T08:00:01+08:00", "r3", "KT", "10086"),
    ];
    let r = run_with(&rules, &[SUB], &lines, no_footer());
    let echoes: Vec<(String, String)> = r
        .decisions
        .iter()
        .filter(|d| &*d.rule_name == "echo")
        .map(|d| (d.text.clone().unwrap_or_default(), d.trigger.id.to_string()))
        .collect();
    let offer_at_8 =
        r.decisions.iter().find(|d| &*d.rule_name == "offer" && d.ts % 86_400_000 == 0).map(|d| d.id.clone());
    let music = r.decisions.iter().find(|d| &*d.rule_name == "music").map(|d| d.id.clone()).unwrap();
    let offer_at_8 = offer_at_8.unwrap();
    assert_eq!(
        echoes,
        [
            (format!("KT12593|true|offer|data_offer|90|{offer_at_8}"), "r1".to_string()),
            (format!("HY|true|music|music_club|45|{music}"), "r2".to_string()),
            ("KT|false|-|-|-|-".to_string(), "r3".to_string()),
        ]
    );
    // Every SMS carries the number it went out from.
    let senders: Vec<(&str, Option<&str>)> = r
        .decisions
        .iter()
        .filter(|d| d.channel == Channel::Sms)
        .map(|d| (&*d.rule_name, d.sender.as_deref()))
        .collect();
    assert!(
        senders.contains(&("music", Some("10658888"))) && senders.contains(&("offer", Some("10086"))),
        "{senders:?}"
    );
}

#[test]
fn the_footer_is_on_marketing_sms_only_and_counted_in_the_split() {
    let lines = vec![crm("09:00:00", "offer"), crm("09:00:01", "bill"), crm("09:00:02", "call")];
    let r = run_with(RULES, &[SUB], &lines, EngineOptions::default());
    let texts: Vec<(&str, Option<&str>)> = r.decisions.iter().map(|d| (&*d.rule_name, d.text.as_deref())).collect();
    assert_eq!(
        texts,
        [("offer", Some("流量包优惠，回复KT开通。拒收请回复R")), ("bill", Some("您的账单已出。")), ("callback", None)]
    );

    // 70 Chinese characters fit one UCS-2 SMS; with the footer they take two parts.
    let seventy: String = "尊敬的客户您好".repeat(10);
    assert_eq!(seventy.chars().count(), 70);
    let rules = format!(
        "- rule: long\n  on: [crm]\n  condition: event.event == \"offer\"\n  action: {{ channel: sms, template: \"{seventy}\" }}\n  policy: {{ quiet_hours: ignore }}\n"
    );
    let r = run_with(&rules, &[SUB], &[crm("09:00:00", "offer")], EngineOptions::default());
    let text = r.decisions[0].text.clone().unwrap();
    assert_eq!(text, format!("{seventy}拒收请回复R"));
    use tidings::sink::wire::{Coding, split};
    assert_eq!(split(&seventy, Coding::Ucs2, 1).unwrap().len(), 1);
    let parts = split(&text, Coding::Ucs2, 1).unwrap();
    assert_eq!(parts.len(), 2);
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.content[6..].to_vec()).collect();
    let back: Vec<u16> = whole.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    assert_eq!(String::from_utf16(&back).unwrap(), text, "the parts carry the footer whole");
}
