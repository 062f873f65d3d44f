//! Replies in the engine, in event time: what a reply answers (`event.in_reply_to`), what its
//! keyword is, unsubscribing by reply (each default keyword, full-width and lower case, each
//! scope) taking effect from the reply's own time, and the footer every marketing SMS carries.

use super::support::*;
use tidings::contact::{Channel, OptOutScope, Outcome, Suppression};
use tidings::engine::EngineOptions;

/// Marketing SMS from two senders, a bill, a call and the confirmation of a refusal (shared with
/// tests/it/replies_live.rs).
pub(crate) const RULES: &str = r#"
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

/// A reply is tied to the latest SMS that asked for its keyword: after an offer (`回复KT`,
/// marketing, so every unsubscribe keyword too) and then a bill from the same number, `TD`
/// refuses the offer's campaign, not the bill's, and `KT` answers the offer; a word nothing
/// asked for answers the latest SMS, the bill.
#[test]
fn a_reply_answers_the_latest_sms_that_asked_for_its_keyword() {
    let rules = format!(
        "{RULES}
- rule: echo
  on: [reply]
  condition: not exists(event.unsubscribe)
  action: {{ channel: sms, template: \"{{event.keyword}}>{{event.in_reply_to.rule|default:-}}\" }}
  campaign: replies
  policy: {{ transactional: true, quiet_hours: ignore, sender: \"10650000\" }}
"
    );
    let mut opts = no_footer();
    opts.policy.unsubscribe.scope = OptOutScope::Campaign;
    let lines = vec![
        crm("09:00:00", "offer"),
        crm("09:30:00", "bill"),
        reply("09:40:00", "r1", "kt", "10086"),
        reply("09:41:00", "r2", "谢谢", "10086"),
        reply("10:00:00", "r3", "TD", "10086"),
        crm("10:00:01", "offer"),
        crm("10:00:02", "bill"),
    ];
    let r = run_with(&rules, &[SUB], &lines, opts);
    let said: Vec<String> =
        r.decisions.iter().filter(|d| d.rule_name.as_ref() == "echo").filter_map(|d| d.text.clone()).collect();
    assert_eq!(said, ["KT>offer", "谢谢>bill"]);
    let got: Vec<(String, Outcome, String)> = decided(&r).into_iter().skip(5).map(|(a, _, c, d)| (a, c, d)).collect();
    assert_eq!((got[0].0.as_str(), got[0].1), ("offer", Outcome::Suppressed(Suppression::Dnd)), "{got:?}");
    assert!(got[0].2.starts_with("opted out of campaign data_offer by reply \"TD\" to 10086"), "{}", got[0].2);
    assert_eq!((got[1].0.as_str(), got[1].1), ("bill", Outcome::Sent));
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

pub(crate) mod live {
    //! Through the real binary: the SMPP simulator sends the subscriber's `ｔｄ`, tidings writes
    //! it as a reply, feeds it back to its live engine, which refuses marketing from that
    //! moment and journals it; a SIGKILL and a restart without checkpoints (the state is gone)
    //! keep the refusal from the journal; a replay from the start decides what live decided.
    use super::RULES;
    use crate::delivery::{Dir, Running, files, lines, tidings};
    use crate::smpp::{Sim, new_log};
    use serde_json::{Value, json};
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    fn config(dir: &Path, smsc: u16) -> PathBuf {
        config_for(dir, smsc, RULES, "", "")
    }

    /// A live engine's config in `dir`: `rules` (written to rules.yaml), events on stdin, SMS to
    /// the simulator on `smsc`; `engine` is more of `[engine]`, `extra` more sections at the end.
    pub(crate) fn config_for(dir: &Path, smsc: u16, rules: &str, engine: &str, extra: &str) -> PathBuf {
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        let text = format!(
            "[engine]\nbatch = 1\nshards = 1\nallowed_lateness = \"0s\"\n{engine}\n[rules]\npaths = [\"{rules}\"]\n\n[source]\nkind = \"stdin\"\n\n{files}\n\
             listen = \"127.0.0.1:0\"\nlinger = \"1s\"\n\n[delivery.smpp]\nhost = \"127.0.0.1\"\nport = {smsc}\n\
             system_id = \"tidings\"\npassword = \"secret\"\nreconnect_min = \"50ms\"\nreconnect_max = \"200ms\"\n\n{extra}",
            rules = dir.join("rules.yaml").display(),
            files = files(dir),
        );
        let p = dir.join("tidings.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The SMPP simulator, taking tidings' bind (system id `tidings`, password `secret`).
    pub(crate) fn smsc(log: &Path) -> Sim {
        Sim::start_on(0, log, &["--system-id", "tidings", "--password", "secret"])
    }

    /// Whether tidings is bound to the simulator.
    pub(crate) fn bound(sim: &Sim) -> bool {
        sim.control(json!({"cmd": "state"}))["sessions"].as_u64() >= Some(1)
    }

    /// `tidings run` on `cfg`, its stderr to `err`: the engine and its stdin.
    pub(crate) fn start(cfg: &Path, err: &Path) -> (Running, std::process::ChildStdin) {
        let mut cmd = tidings(cfg);
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(std::fs::File::create(err).unwrap());
        let mut engine = Running::spawn(cmd);
        let stdin = engine.child().stdin.take().expect("piped stdin");
        (engine, stdin)
    }

    /// Polls `ready` until it holds, for at most 30 s; failing, shows what tidings said.
    pub(crate) fn wait_until(what: &str, err: &Path, ready: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !ready() {
            let said = std::fs::read_to_string(err).unwrap_or_default();
            assert!(t0.elapsed() < Duration::from_secs(30), "{what}: not after 30 s; tidings said:\n{said}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A crm event for 13800138000 at the host's time now, written to tidings and to the record
    /// of what was sent (the replay's input).
    fn send(stdin: &mut std::process::ChildStdin, record: &Path, n: u32, what: &str) -> String {
        let ts = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
        let line =
            crm_line("13800138000", &format!("c{n}"), &ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, false), what);
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(record).unwrap();
        writeln!(f, "{line}").unwrap();
        format!("c{n}")
    }

    /// A crm event `what` for `msisdn` at `ts`, with the event id `id`.
    pub(crate) fn crm_line(msisdn: &str, id: &str, ts: &str, what: &str) -> String {
        format!(r#"{{"kind":"crm","id":"{id}","ts":"{ts}","msisdn":"{msisdn}","event":"{what}","attrs":{{}}}}"#)
    }

    /// The decision the event `id` triggered for rule `rule`.
    pub(crate) fn decision(dir: &Path, rule: &str, id: &str) -> Option<Value> {
        lines(&dir.join("out/decisions.jsonl")).into_iter().find(|d| d["rule"] == rule && d["trigger"]["id"] == id)
    }

    #[test]
    fn an_unsubscribe_by_sms_holds_from_its_moment_across_a_sigkill_and_a_replay_from_the_start() {
        let dir = Dir::new("unsubscribe-live");
        let log = new_log();
        let sim = smsc(&log);
        let cfg = config(&dir.0, sim.port);
        let (err, record) = (dir.0.join("err"), dir.0.join("sent.jsonl"));

        let (mut first, mut stdin) = start(&cfg, &err);
        wait_until("tidings binds to the SMSC", &err, || bound(&sim));
        let c1 = send(&mut stdin, &record, 1, "offer");
        wait_until("the first offer is decided", &err, || decision(&dir.0, "offer", &c1).is_some());
        assert_eq!(decision(&dir.0, "offer", &c1).unwrap()["outcome"], "sent");

        // The subscriber answers `ｔｄ` (full-width, as a phone's Chinese keyboard sends it).
        sim.control(json!({"cmd": "mo", "from": "8613800138000", "to": "10086", "text": "ｔｄ", "coding": 8}));
        let journal = dir.0.join("out/optouts.jsonl");
        wait_until("the refusal is journaled", &err, || lines(&journal).len() == 1);
        let j = &lines(&journal)[0];
        assert_eq!(
            (j["msisdn"].as_str(), j["scope"].as_str(), j["keyword"].as_str()),
            (Some("13800138000"), Some("marketing"), Some("TD"))
        );
        let reply_id = j["reply"].as_str().unwrap().to_string();
        wait_until("the confirmation is decided", &err, || {
            lines(&dir.0.join("out/decisions.jsonl"))
                .iter()
                .any(|d| d["rule"] == "confirm" && d["trigger"]["id"] == reply_id.as_str())
        });

        let c2 = send(&mut stdin, &record, 2, "offer");
        let c3 = send(&mut stdin, &record, 3, "bill");
        wait_until("the next offer and the bill are decided", &err, || decision(&dir.0, "bill", &c3).is_some());
        let d2 = decision(&dir.0, "offer", &c2).expect("the second offer's decision");
        assert_eq!((d2["outcome"].as_str(), d2["reason"].as_str()), (Some("suppressed"), Some("dnd")), "{d2}");
        assert!(
            d2["detail"].as_str().unwrap().contains(&format!("by reply \"TD\" to 10086 (event {reply_id})")),
            "{d2}"
        );
        assert_eq!(decision(&dir.0, "bill", &c3).unwrap()["outcome"], "sent", "a bill still goes");

        // SIGKILL; no checkpoints: the restarted engine starts with no state at all.
        first.child().kill().unwrap();
        first.child().wait().unwrap();
        drop(stdin);
        std::fs::rename(dir.0.join("out/decisions.jsonl"), dir.0.join("decisions-first.jsonl")).unwrap();
        let (second, mut stdin) = start(&cfg, &err);
        wait_until("tidings binds again", &err, || bound(&sim));
        let c4 = send(&mut stdin, &record, 4, "offer");
        wait_until("the offer after the restart is decided", &err, || decision(&dir.0, "offer", &c4).is_some());
        let d4 = decision(&dir.0, "offer", &c4).unwrap();
        assert_eq!((d4["outcome"].as_str(), d4["reason"].as_str()), (Some("suppressed"), Some("dnd")), "{d4}");
        drop(stdin);
        let out = second.output();
        assert!(out.status.success(), "{}", std::fs::read_to_string(&err).unwrap_or_default());
        assert_eq!(lines(&journal).len(), 1, "journaled once");

        // A replay from the start of everything live read (the events sent, and the reply as
        // the delivery side wrote it): the same decisions.
        let mut live: Vec<Value> = lines(&dir.0.join("decisions-first.jsonl"));
        live.extend(lines(&dir.0.join("out/decisions.jsonl")));
        let replay = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--rules")
            .arg(dir.0.join("rules.yaml"))
            .arg("--events")
            .arg(&record)
            .arg(dir.0.join("outcomes.jsonl"))
            .arg("--out")
            .arg(dir.0.join("replay"))
            .output()
            .unwrap();
        assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
        // It says which journal of refusals it held to (found through the config).
        let said = String::from_utf8_lossy(&replay.stdout);
        let read = format!("opt-outs      1 refusal(s) of 1 subscriber(s) read from {}", journal.display());
        assert!(said.contains(&read), "{said}");
        let replayed = lines(&dir.0.join("replay/decisions.jsonl"));
        let key = |d: &Value| (d["id"].clone(), d["outcome"].clone(), d["reason"].clone(), d["detail"].clone());
        let mut a: Vec<_> = live.iter().map(key).collect();
        let mut b: Vec<_> = replayed.iter().map(key).collect();
        a.sort_by_key(|k| format!("{k:?}"));
        b.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(a, b, "replay decides what live decided");
        assert_eq!(lines(&journal).len(), 1, "a replay adds nothing to the journal");

        // `tidings explain` tells the story with the reply that refused the offer.
        let explain = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["explain", "13800138000", "--config"])
            .arg(&cfg)
            .arg("--rules")
            .arg(dir.0.join("rules.yaml"))
            .arg("--events")
            .arg(&record)
            .arg(dir.0.join("outcomes.jsonl"))
            .output()
            .unwrap();
        let told = String::from_utf8_lossy(&explain.stdout);
        assert!(explain.status.success(), "{}", String::from_utf8_lossy(&explain.stderr));
        let why = format!("opted out of marketing SMS by reply \"TD\" to 10086 (event {reply_id})");
        assert!(told.matches(&why).count() >= 3, "the refusal, and the two offers it stopped:\n{told}");
    }
}

/// `[policy.unsubscribe]` and the sender are checked when the config loads, each mistake at its
/// place; the shipped config's section is the defaults written out.
#[test]
fn the_unsubscribe_config_is_checked_with_its_place_and_the_shipped_one_is_the_default() {
    use tidings::config::Config;
    let dir = std::env::temp_dir().join(format!("tidings-unsub-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let load = |text: &str| {
        let p = dir.join("t.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(&p).map(|_| ()).map_err(|e| e.to_string())
    };
    let e = load("[policy.unsubscribe]\nscope = \"everything\"\n").unwrap_err();
    assert!(e.contains("t.toml:2:9: policy.unsubscribe.scope: `everything` is not campaign, marketing or all"), "{e}");
    let e = load("[policy.unsubscribe]\nkeywords = [\"TD\", \"回复 TD\"]\n").unwrap_err();
    assert!(e.contains("t.toml:2:19: policy.unsubscribe.keywords: `回复 TD` is not one word"), "{e}");
    let e = load("[policy]\nsender = \"10086-1\"\n").unwrap_err();
    assert!(e.contains("t.toml:2:10: policy.sender: `10086-1` is not a sender number"), "{e}");
    // Keywords are normalised as replies are: `ｔｄ` in the config is `TD`.
    let p = dir.join("ok.toml");
    std::fs::write(&p, "[policy.unsubscribe]\nkeywords = [\"ｔｄ\", \"退订\"]\nscope = \"campaign\"\n").unwrap();
    let c = Config::load(&p).unwrap();
    let u = &c.resolved_policy.unsubscribe;
    assert_eq!(u.keywords, vec!["TD".into(), "退订".into()] as Vec<Box<str>>);
    assert_eq!(u.scope, OptOutScope::Campaign);
    let shipped =
        Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml"))).unwrap();
    assert_eq!(shipped.resolved_policy.unsubscribe, tidings::rules::policy::Unsubscribe::default());
    assert_eq!((&*shipped.resolved_policy.sender, shipped.resolved_policy.reply_window), ("10086", 72 * 3_600_000));
    // Unwritten, the sender is the SMS gateway's own number; written, it wins.
    let sender = |text: &str| {
        let p = dir.join("gw.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(&p).map(|c| c.resolved_policy.sender.to_string()).map_err(|e| e.to_string())
    };
    let cmpp = "[delivery]\noutbox = \"o\"\noutcomes = \"o.jsonl\"\n[delivery.cmpp]\nsrc_id = \"1069012345\"\n";
    assert_eq!(sender(cmpp).as_deref(), Ok("1069012345"));
    assert_eq!(sender(&format!("[policy]\nsender = \"106901234501\"\n{cmpp}")).as_deref(), Ok("106901234501"));
    assert_eq!(sender("[delivery]\noutbox = \"o\"\noutcomes = \"o.jsonl\"\n").as_deref(), Ok("10086"));
    let _ = std::fs::remove_dir_all(&dir);
}
