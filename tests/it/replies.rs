//! Subscribers' replies (MO messages) as `reply` events: readable by rules, written once to
//! `outcomes.jsonl` by the real binary whichever gateway brought them (the SMPP simulator's
//! `deliver_sm`, Kannel's `get-url`), and recorded once when a gateway delivers one again after
//! tidings was killed before acknowledging it.

use crate::support::{SUB, ev, run};

/// A rule on `reply` reads `event.text`, `event.to` and `event.gateway`; the rule index files it
/// under its service number, so a reply to another number does not reach it.
#[test]
fn a_rule_reads_a_replys_text_service_number_and_gateway() {
    let rules = r#"
- rule: unsubscribe
  on: [reply]
  condition: event.to == "10658888" and event.text contains "退订" and event.gateway == smpp
  action: { channel: sms, template: "已为您退订 {event.text}" }
"#;
    let reply =
        |t: &str, to: &str, text: &str| ev("reply", t, &format!(r#""text":"{text}","to":"{to}","gateway":"smpp""#));
    let r = run(
        rules,
        &[SUB],
        &[
            reply("10:00:00", "10658888", "退订 谢谢"),
            reply("10:01:00", "10659999", "退订"),
            reply("10:02:00", "10658888", "你好"),
        ],
    );
    assert!(r.dead.is_empty(), "{:?}", r.dead);
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    assert_eq!(texts, ["已为您退订 退订 谢谢"], "only the unsubscribe to 10658888 matches");
    assert_eq!(r.decisions[0].trigger.kind, "reply");
}
