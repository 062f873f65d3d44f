//! The campaign report, shadow rules and pack diffs, through the real binary: the page's numbers
//! against the decisions file the same replay wrote, the page in a real browser (Debian's
//! headless Chromium, started and stopped here by PID), a shadow rule that is decided and shown
//! but never sent (files, report, `/metrics`), and a diff of two packs contact by contact.

use crate::delivery::{Dir, at, http_get as get, port as free_port, send, start_live};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tidings() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tidings"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "tidings failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The figures the page embeds.
pub fn embedded(html: &str, id: &str) -> Value {
    let open = format!("<script type=\"application/json\" id=\"{id}\">");
    let start = html.find(&open).unwrap_or_else(|| panic!("no {id} block")) + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// A table's rows as the page shows them: row key, row mode, and each `data-k` cell's text.
fn table(html: &str, id: &str) -> Vec<(String, String, BTreeMap<String, String>)> {
    let open = format!("<table id=\"{id}\"");
    let start = html.find(&open).unwrap_or_else(|| panic!("no table {id}"));
    let body = &html[start..start + html[start..].find("</table>").unwrap()];
    let attr = |s: &str, name: &str| -> Option<String> {
        let k = format!("{name}=\"");
        let i = s.find(&k)? + k.len();
        Some(s[i..i + s[i..].find('"')?].to_string())
    };
    body.split("<tr")
        .skip(1)
        .filter_map(|row| {
            let head = &row[..row.find('>')?];
            let key = attr(head, "data-key")?;
            let mode = attr(head, "data-mode").unwrap_or_default();
            let mut cells = BTreeMap::new();
            for cell in row.split("<td").skip(1) {
                let Some(k) = attr(&cell[..cell.find('>').unwrap()], "data-k") else { continue };
                let text = &cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()];
                cells.insert(k, text.to_string());
            }
            Some((key, mode, cells))
        })
        .collect()
}

fn num(cells: &BTreeMap<String, String>, k: &str) -> u64 {
    cells.get(k).unwrap_or_else(|| panic!("no cell {k} in {cells:?}")).parse().unwrap()
}

/// Per rule, from decisions.jsonl alone: each candidate (action id) counted once by its last
/// decision. (fired, sent, suppressed by reason, deferred at end, subscribers sent to)
type Tally = (u64, u64, BTreeMap<String, u64>, u64, BTreeSet<String>);

fn tally(decisions: &[Value]) -> BTreeMap<String, Tally> {
    let mut last: HashMap<&str, &Value> = HashMap::new();
    let mut order = Vec::new();
    for d in decisions {
        let id = d["id"].as_str().unwrap();
        if last.insert(id, d).is_none() {
            order.push(id);
        }
    }
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for id in order {
        let d = last[id];
        let t = out.entry(d["rule"].as_str().unwrap().to_string()).or_default();
        t.0 += 1;
        match d["outcome"].as_str().unwrap() {
            "sent" => {
                t.1 += 1;
                t.4.insert(d["msisdn"].as_str().unwrap().to_string());
            }
            "suppressed" => *t.2.entry(d["reason"].as_str().unwrap().to_string()).or_default() += 1,
            "deferred" => t.3 += 1,
            o => panic!("outcome {o}"),
        }
    }
    out
}

/// A generated day, replayed with the report; returns (dir, html).
fn generated_day(dir: &Path) -> String {
    let data = dir.join("data");
    let mut g = tidings();
    g.args(["gen", "--subscribers", "1500", "--events", "30000", "--days", "1", "--out"]).arg(&data);
    ok(g);
    let mut r = tidings();
    r.args(["replay", "--events"])
        .arg(data.join("events.jsonl"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--report")
        .arg(dir.join("report.html"));
    let out = r.output().unwrap();
    assert!(out.status.success(), "replay failed:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("report        "));
    // stderr is a pipe here, not a terminal: no progress bar.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("ETA") && !err.contains('\r') && !err.contains("\u{1b}["), "{err}");
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

#[test]
fn the_report_of_a_generated_day_matches_the_decisions_file() {
    let dir = Dir::new("report-day");
    let html = generated_day(&dir.0);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<meta charset=\"utf-8\">"));
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "self-contained: no `{external}`");
    }
    let fig = embedded(&html, "report-data");
    let decisions = jsonl(&dir.0.join("out/decisions.jsonl"));
    let actions = jsonl(&dir.0.join("out/actions.jsonl"));
    let events = jsonl(&dir.0.join("data/events.jsonl"));
    assert!(actions.len() > 300, "a generated day sends plenty: {}", actions.len());

    // Totals.
    let totals = &fig["totals"];
    assert_eq!(totals["events"], 30000);
    assert_eq!(totals["actions"], actions.len() as u64);
    let suppressed = decisions.iter().filter(|d| d["outcome"] == "suppressed").count() as u64;
    assert_eq!(totals["suppressed"], suppressed);
    let by_rule = tally(&decisions);
    assert_eq!(totals["candidates"], by_rule.values().map(|t| t.0).sum::<u64>());
    // The cards: `<div class="card" data-key="K"><b data-k="n">V</b>`.
    let cards = &html[html.find("id=\"totals\"").unwrap()..html.find("<div class=\"grid\">").unwrap()];
    let mut shown = 0;
    for card in cards.split("data-key=\"").skip(1) {
        let key = &card[..card.find('"').unwrap()];
        let open = "<b data-k=\"n\">";
        let v = &card[card.find(open).unwrap() + open.len()..card.find("</b>").unwrap()];
        assert_eq!(Value::from(v.parse::<u64>().unwrap()), totals[key], "the {key} card shows the embedded figure");
        shown += 1;
    }
    assert_eq!(shown, 9);
    // The messages the SMS took (what the gateway bills): each action's text split as sent.
    let parts = |a: &&Value| tidings::contact::sms_parts(a["text"].as_str().unwrap_or_default()) as u64;
    let sms: Vec<&Value> = actions.iter().filter(|a| a["channel"] == "sms").collect();
    assert_eq!(totals["sms_messages"], sms.iter().map(parts).sum::<u64>());
    assert!(totals["sms_messages"].as_u64() >= Some(sms.len() as u64), "{totals}");
    // Actions by channel and suppressions by reason.
    let mut by_channel: BTreeMap<String, u64> = BTreeMap::new();
    for a in &actions {
        *by_channel.entry(a["channel"].as_str().unwrap().into()).or_default() += 1;
    }
    for (key, _, cells) in table(&html, "actions-by-channel") {
        assert_eq!(num(&cells, "sent"), by_channel.get(&key).copied().unwrap_or(0), "{key}");
        assert_eq!(num(&cells, "sent"), fig["actions_by_channel"][&key]);
    }
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d["outcome"] == "suppressed") {
        *by_reason.entry(d["reason"].as_str().unwrap().into()).or_default() += 1;
    }
    let shown = table(&html, "suppressions");
    assert_eq!(shown.len(), 10, "every reason has a row, zero or not");
    for (key, _, cells) in shown {
        assert_eq!(num(&cells, "n"), by_reason.get(&key).copied().unwrap_or(0), "suppressed for {key}");
    }
    assert!(by_reason.get("cap") > Some(&0) && by_reason.get("control_group") > Some(&0), "{by_reason:?}");

    // Per rule: every cell of the visible table, against decisions.jsonl and the embedded row.
    let rows = table(&html, "rules");
    assert_eq!(rows.len(), fig["rules"].as_array().unwrap().len());
    for (rule, mode, cells) in &rows {
        assert_eq!(mode, "live");
        let t = by_rule.get(rule).cloned().unwrap_or_default();
        assert_eq!(num(cells, "fired"), t.0, "{rule} fired");
        assert_eq!(num(cells, "sent"), t.1, "{rule} sent");
        let messages = sms.iter().filter(|a| a["rule"] == rule.as_str()).map(parts).sum::<u64>();
        assert_eq!(num(cells, "messages"), messages, "{rule} SMS messages");
        for reason in [
            "campaign_off",
            "excluded",
            "dnd",
            "cap",
            "suppressed_after",
            "control_group",
            "arbitration",
            "quiet_hours",
            "capacity",
            "budget",
        ] {
            assert_eq!(num(cells, reason), t.2.get(reason).copied().unwrap_or(0), "{rule} {reason}");
        }
        assert_eq!(num(cells, "deferred"), t.3, "{rule} deferred at end");
        assert_eq!(num(cells, "subscribers"), t.4.len() as u64, "{rule} subscribers");
        let j = fig["rules"].as_array().unwrap().iter().find(|r| r["name"] == rule.as_str()).unwrap();
        assert_eq!(j["sent"], t.1);
        assert_eq!(j["fired"], t.0);
    }
    // Per campaign: the sum of its rules.
    for (campaign, _, cells) in table(&html, "campaigns") {
        let rules: Vec<&str> = fig["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["campaign"] == campaign.as_str())
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let sent: u64 = rules.iter().map(|r| by_rule.get(*r).map_or(0, |t| t.1)).sum();
        assert_eq!(num(&cells, "sent"), sent, "campaign {campaign}");
    }

    // The hourly timeline: each hour's actions per channel, from actions.jsonl.
    let mut hourly: BTreeMap<(String, String), u64> = BTreeMap::new();
    for a in &actions {
        let hour = a["ts"].as_str().unwrap()[..13].to_string();
        *hourly.entry((hour, a["channel"].as_str().unwrap().into())).or_default() += 1;
    }
    let timeline = table(&html, "timeline");
    assert!(timeline.len() >= 24, "a day has 24 hours: {}", timeline.len());
    let mut seen = 0;
    for (hour, _, cells) in &timeline {
        for ch in ["sms", "call", "ivr", "order"] {
            let want = hourly.get(&(hour[..13].to_string(), ch.to_string())).copied().unwrap_or(0);
            assert_eq!(num(cells, ch), want, "{hour} {ch}");
            seen += want;
        }
    }
    assert_eq!(seen, actions.len() as u64, "every action is in some hour");

    // Contacts per subscriber: 0, 1, 2, ... from actions.jsonl and the subscriber file.
    let mut per_sub: HashMap<&str, usize> = HashMap::new();
    for a in &actions {
        *per_sub.entry(a["msisdn"].as_str().unwrap()).or_default() += 1;
    }
    let subscribers = std::fs::read_to_string(dir.0.join("data/subscribers.jsonl")).unwrap().lines().count();
    let mut want = vec![0u64; per_sub.values().max().copied().unwrap_or(0) + 1];
    want[0] = (subscribers - per_sub.len()) as u64;
    for n in per_sub.values() {
        want[*n] += 1;
    }
    let shown: Vec<u64> = table(&html, "contacts-per-subscriber").iter().map(|r| num(&r.2, "n")).collect();
    assert_eq!(shown, want, "subscribers by number of contacts");
    assert!(want.len() > 3, "some subscribers get three or more: {want:?}");

    // Outcomes: the generator's call results.
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["kind"] == "outcome") {
        *calls.entry(format!("{}/{}", e["channel"].as_str().unwrap(), e["status"].as_str().unwrap())).or_default() += 1;
    }
    assert!(!calls.is_empty(), "the generator reports call results");
    let shown: BTreeMap<String, u64> =
        table(&html, "outcomes").into_iter().map(|(k, _, c)| (k, num(&c, "n"))).collect();
    assert_eq!(shown, calls);
    let answered = calls.get("call/answered").copied().unwrap_or(0) as f64;
    let rate = fig["outcomes"]["answer_rate"].as_f64().unwrap();
    assert!((rate - answered / calls.values().sum::<u64>() as f64).abs() < 1e-12);

    // Lift: the control arm is the subscribers held out, from decisions.jsonl.
    let lift = table(&html, "lift");
    assert!(!lift.is_empty(), "campaigns with a control group decided something");
    for (campaign, _, cells) in lift {
        let held: BTreeSet<&str> = decisions
            .iter()
            .filter(|d| d["campaign"] == campaign.as_str() && d["reason"] == "control_group")
            .map(|d| d["msisdn"].as_str().unwrap())
            .collect();
        assert_eq!(num(&cells, "control_n"), held.len() as u64, "{campaign} control arm");
        let j = fig["lift"].as_array().unwrap().iter().find(|l| l["campaign"] == campaign.as_str()).unwrap();
        assert_eq!(j["treatment"]["n"], num(&cells, "treatment_n"));
        assert_eq!(j["treatment"]["responders"], num(&cells, "treatment_responders"));
        assert_eq!(j["control"]["responders"], num(&cells, "control_responders"));
    }
}

/// The pixels of an RGB(A) PNG, and its size.
fn pixels(png_path: &Path) -> (Vec<[u8; 3]>, u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected colour type {other:?}"),
    };
    (buf[..info.buffer_size()].chunks(step).map(|c| [c[0], c[1], c[2]]).collect(), info.width, info.height)
}

/// Distinct colours and the share of pixels that are not the background, of an RGB(A) PNG.
fn variety(png_path: &Path) -> (usize, f64, u32, u32) {
    let (px, width, height) = pixels(png_path);
    let colours: BTreeSet<[u8; 3]> = px.iter().copied().collect();
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / px.len() as f64;
    (colours.len(), ink, width, height)
}

/// Headless Chromium renders the page to a PNG; started by PID, killed if it overstays.
pub fn screenshot(html: &Path, png: &Path, size: &str) {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chromium is missing: `bash scripts/test` installs it (apt-get install chromium)");
    let profile = png.with_extension("profile");
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={size}"))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium (pid {}) did not finish within 90 s", child.id());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium failed: {status}");
    let _ = std::fs::remove_dir_all(profile);
}

#[test]
fn headless_chromium_renders_the_report_with_its_charts() {
    let dir = Dir::new("report-chromium");
    generated_day(&dir.0);
    let png = dir.0.join("report.png");
    screenshot(&dir.0.join("report.html"), &png, "1280,1600");
    let (colours, ink, w, h) = variety(&png);
    assert_eq!((w, h), (1280, 1600));
    // A blank or error page is one or two colours; text, tables and the channel colours of the
    // charts make hundreds (anti-aliasing).
    assert!(colours > 100, "only {colours} colours: the page did not render");
    assert!(ink > 0.03, "only {:.1}% of the pixels are not background", ink * 100.0);

    // Chinese names render as glyphs: the shadow pack's report (campaigns 充值关怀, 冬季流量包)
    // against the same page with those names swapped for as many private-use characters, which
    // no font draws. Were the Chinese not rendered (no font, or the page not read as UTF-8),
    // both would show the same missing-glyph boxes.
    let rules = shadow_pack(&dir.0);
    let events = dir.0.join("topups.jsonl");
    std::fs::write(&events, topup("13800138000", "2026-11-24T10:00:00+08:00", 50)).unwrap();
    let mut r = tidings();
    r.args(["replay", "--config", "/nonexistent.toml", "--rules"])
        .arg(&rules)
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(dir.0.join("shadow"))
        .arg("--report")
        .arg(dir.0.join("zh.html"));
    ok(r);
    let zh = std::fs::read_to_string(dir.0.join("zh.html")).unwrap();
    let blank = zh
        .replace("充值关怀", "\u{e000}\u{e001}\u{e002}\u{e003}")
        .replace("冬季流量包", "\u{e004}\u{e005}\u{e006}\u{e007}\u{e008}");
    assert_ne!(zh, blank);
    std::fs::write(dir.0.join("pua.html"), blank).unwrap();
    screenshot(&dir.0.join("zh.html"), &dir.0.join("zh.png"), "1280,2400");
    screenshot(&dir.0.join("pua.html"), &dir.0.join("pua.png"), "1280,2400");
    let (a, b) = (pixels(&dir.0.join("zh.png")).0, pixels(&dir.0.join("pua.png")).0);
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        differ > 200,
        "the Chinese names draw like missing glyphs ({differ} pixels differ): is a CJK font installed?"
    );
}

/// A pack with a live rule and a shadow rule on the same trigger. The shadow rule outranks the
/// live one and has a tighter cap of its own: were it live (or did it share the live history),
/// the live rule would lose the first top-up to arbitration and be capped sooner.
fn shadow_pack(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("topup.yaml"),
        r#"
- rule: topup_thanks
  desc: 充值成功感谢
  on: [topup]
  condition: event.amount_fen >= 10 CNY
  action: { channel: sms, template: "感谢您充值{event.amount_fen|cny}元" }
  campaign: 充值关怀
  priority: 50
  policy: { cap: "2 per 1d", quiet_hours: ignore }

- rule: topup_data_trial
  desc: 试推冬季流量包(影子规则)
  mode: shadow
  on: [topup]
  condition: event.amount_fen >= 10 CNY
  # Two messages (80 characters with the footer): `tidings_sms_messages_total` counts both.
  action: { channel: sms, template: "冬季流量包试用，每月10元享10GB国内流量，当月有效，次月自动续订，可随时退订。发送DLLB至10086办理，详询10086或登录中国移动APP。【中国移动】", parts: 2 }
  campaign: 冬季流量包
  priority: 90
  policy: { cap: "1 per 1d", quiet_hours: ignore }
"#,
    )
    .unwrap();
    rules
}

fn topup(m: &str, ts: &str, cny: u32) -> String {
    format!(
        r#"{{"kind":"topup","ts":"{ts}","msisdn":"{m}","amount_fen":{},"balance_fen":9000,"channel":"online"}}"#,
        cny * 100
    )
}

#[test]
fn a_shadow_rule_is_decided_and_reported_but_never_sent_and_takes_nothing_from_live_rules() {
    let dir = Dir::new("report-shadow");
    let rules = shadow_pack(&dir.0);
    let m = "13800138000";
    let events = dir.0.join("events.jsonl");
    let ts = ["2026-11-24T10:00:00+08:00", "2026-11-24T11:00:00+08:00", "2026-11-24T12:00:00+08:00"];
    // Two delivery reports come back with the stream (the outcomes file replayed with it).
    let report = |t: &str, status: &str| {
        format!(
            r#"{{"kind":"outcome","ts":"{t}","msisdn":"{m}","action_id":"a0000000000000001","channel":"sms","status":"{status}","rule":"topup_thanks","campaign":"充值关怀"}}"#
        )
    };
    let mut lines: Vec<String> = ts.iter().map(|t| topup(m, t, 50)).collect();
    lines.push(report("2026-11-24T12:00:05+08:00", "delivered"));
    lines.push(report("2026-11-24T12:00:06+08:00", "failed"));
    std::fs::write(&events, lines.join("\n")).unwrap();
    let mut r = tidings();
    r.args(["replay", "--config", "/nonexistent.toml", "--rules"])
        .arg(&rules)
        .arg("--events")
        .arg(&events)
        .arg("--out")
        .arg(dir.0.join("out"))
        .arg("--report")
        .arg(dir.0.join("report.html"));
    let stdout = ok(r);
    assert!(stdout.contains("shadow        1 would-be actions"), "{stdout}");
    let actions = jsonl(&dir.0.join("out/actions.jsonl"));
    let sent: Vec<&str> = actions.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(sent, ["topup_thanks", "topup_thanks"], "the live rule sends twice (its cap), the shadow rule never");
    let decisions = jsonl(&dir.0.join("out/decisions.jsonl"));
    let shape: Vec<(String, String, String, String)> = decisions
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
            (s("rule"), s("mode"), s("outcome"), s("reason"))
        })
        .collect();
    let row =
        |r: &str, mode: &str, o: &str, why: &str| (r.to_string(), mode.to_string(), o.to_string(), why.to_string());
    assert_eq!(
        shape,
        [
            row("topup_thanks", "", "sent", ""),
            row("topup_data_trial", "shadow", "sent", ""),
            row("topup_thanks", "", "sent", ""),
            row("topup_data_trial", "shadow", "suppressed", "cap"),
            row("topup_thanks", "", "suppressed", "cap"),
            row("topup_data_trial", "shadow", "suppressed", "cap"),
        ],
        "live decisions as without the shadow rule; the shadow rule meets its own cap"
    );
    let html = std::fs::read_to_string(dir.0.join("report.html")).unwrap();
    assert!(html.contains("冬季流量包") && html.contains("充值关怀"), "Chinese campaign names are on the page");
    let rows = table(&html, "rules");
    let shadow = rows.iter().find(|r| r.0 == "topup_data_trial").unwrap();
    assert_eq!(shadow.1, "shadow");
    assert_eq!((num(&shadow.2, "sent"), num(&shadow.2, "cap")), (1, 2));
    let live = rows.iter().find(|r| r.0 == "topup_thanks").unwrap();
    assert_eq!((live.1.as_str(), num(&live.2, "sent"), num(&live.2, "cap")), ("live", 2, 1));
    let by_channel = table(&html, "actions-by-channel");
    let sms = &by_channel.iter().find(|r| r.0 == "sms").unwrap().2;
    assert_eq!((num(sms, "sent"), num(sms, "shadow")), (2, 1), "would-be actions beside the live ones");
    assert_eq!((num(&shadow.2, "messages"), num(&live.2, "messages")), (2, 2), "the shadow SMS is two messages");
    let fig = embedded(&html, "report-data");
    assert_eq!((fig["totals"]["actions"].as_u64(), fig["totals"]["shadow_actions"].as_u64()), (Some(2), Some(1)));
    let rates = table(&html, "outcome-rates");
    let delivery = &rates.iter().find(|r| r.0 == "delivery_rate").unwrap().2;
    assert_eq!(delivery["rate"], "50.0 %", "one SMS delivered, one failed");
    assert_eq!(fig["outcomes"]["delivery_rate"], 0.5);

    // The rule pack's own test command matches a shadow decision only with `mode: shadow`.
    std::fs::write(
        rules.join("topup.tests.yaml"),
        format!(
            r#"
- test: shadow_is_decided_apart
  subscribers: [{{msisdn: "{m}", brand: gotone, tier: high}}]
  events:
    - {{kind: topup, ts: "{}", msisdn: "{m}", amount_fen: 5000, channel: online}}
  expect:
    - {{rule: topup_thanks}}
    - {{rule: topup_data_trial, mode: shadow}}
"#,
            ts[0]
        ),
    )
    .unwrap();
    let mut t = tidings();
    t.arg("test").arg(&rules);
    assert!(ok(t).contains("1 passed, 0 failed"));
    let v = tidings().arg("validate").arg(&rules).output().unwrap();
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stderr).contains("ok: 2 rules in 1 files (1 in shadow mode: never sent)"));
    std::fs::write(
        rules.join("bad.yaml"),
        "- rule: x\n  mode: dry_run\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  action: { channel: sms, template: x }\n",
    )
    .unwrap();
    let out = tidings().arg("validate").arg(rules.join("bad.yaml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.yaml:2:9: error[E005]: `dry_run` is not a rule mode"), "{err}");
}

#[test]
fn metrics_show_a_shadow_rules_would_be_actions_beside_the_live_ones() {
    let dir = Dir::new("report-shadow-metrics");
    let rules = shadow_pack(&dir.0);
    let port = free_port();
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\nbatch = 1\nshards = 1\n\n[rules]\npaths = [\"{}\"]\n\n[source]\nkind = \"stdin\"\n\n[output]\ndir = \"{}\"\nstdout = false\n\n[api]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"adm\"\n",
            rules.display(),
            dir.0.join("out").display()
        ),
    )
    .unwrap();
    let (engine, mut stdin) = start_live(&cfg, port);
    let m = "13800138000";
    send(&mut stdin, &[topup(m, &at(0), 50), topup(m, &at(1), 50), topup(m, &at(2), 50)]);
    let sample = |body: &str, prefix: &str| -> Option<f64> {
        body.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
    };
    let t0 = Instant::now();
    let body = loop {
        let (status, body) = get(port, "/metrics", Some("adm"));
        assert_eq!(status, 200, "{body}");
        // Every top-up decided for both rules: a shadow decision is counted as it is written,
        // which may come just after the live one of the same event.
        if sample(&body, r#"tidings_events_total{kind="topup"}"#) == Some(3.0)
            && body.contains(r#"rule="topup_thanks",mode="live",outcome="suppressed""#)
            && body.contains(r#"rule="topup_data_trial",mode="shadow",outcome="suppressed",reason="cap"} 2"#)
        {
            break body;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the top-ups are decided:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sample(&body, r#"tidings_actions_total{channel="sms",mode="live"}"#), Some(2.0), "{body}");
    assert_eq!(sample(&body, r#"tidings_actions_total{channel="sms",mode="shadow"}"#), Some(1.0), "{body}");
    // The messages the SMS take (each part of a long one is billed): the shadow one is two.
    assert_eq!(sample(&body, r#"tidings_sms_messages_total{mode="live"}"#), Some(2.0), "{body}");
    assert_eq!(sample(&body, r#"tidings_sms_messages_total{mode="shadow"}"#), Some(2.0), "{body}");
    assert_eq!(
        sample(
            &body,
            r#"tidings_decisions_total{rule="topup_data_trial",mode="shadow",outcome="suppressed",reason="cap"}"#
        ),
        Some(2.0),
        "{body}"
    );
    // End of input: the engine writes out and exits; only the live rule's contacts were made.
    drop(stdin);
    let out = engine.output();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let actions = crate::delivery::lines(&dir.0.join("out/actions.jsonl"));
    let rules: Vec<&str> = actions.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["topup_thanks", "topup_thanks"]);
}

#[test]
fn diff_of_two_packs_names_the_contacts_gained_and_lost_per_rule() {
    let dir = Dir::new("report-diff");
    let (a, b) = ("13800138001", "13800138002");
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("subscribers.jsonl"),
        format!("{{\"msisdn\":\"{a}\",\"brand\":\"gotone\",\"tier\":\"high\"}}\n{{\"msisdn\":\"{b}\",\"brand\":\"gotone\",\"tier\":\"high\"}}\n"),
    )
    .unwrap();
    let events = dir.0.join("events.jsonl");
    std::fs::write(
        &events,
        [
            topup(a, "2026-11-24T10:00:00+08:00", 20),
            topup(b, "2026-11-24T10:00:00+08:00", 50),
            topup(b, "2026-11-24T11:00:00+08:00", 50),
        ]
        .join("\n"),
    )
    .unwrap();
    let thanks = |min: u32, cap: u32| {
        format!(
            "- rule: topup_thanks\n  on: [topup]\n  condition: event.amount_fen >= {min} CNY\n  action: {{ channel: sms, template: \"感谢充值\" }}\n  policy: {{ cap: \"{cap} per 1d\", quiet_hours: ignore }}\n"
        )
    };
    let old = dir.0.join("old.yaml");
    let new = dir.0.join("new.yaml");
    std::fs::write(&old, thanks(10, 2)).unwrap();
    // The new pack raises the threshold, tightens the cap and adds a call for big top-ups
    // (beside the thanks SMS of the same top-up: `alongside`).
    std::fs::write(
        &new,
        thanks(30, 1)
            + "\n- rule: big_topup_call\n  on: [topup]\n  condition: event.amount_fen >= 50 CNY\n  action: { channel: call, script: \"大额充值回访\", queue: vip }\n  policy: { quiet_hours: ignore, alongside: true }\n"
            // And an absence test on a window of its own (no usage comes: it decides nothing here).
            + "\n- rule: lapsed\n  on: [usage]\n  condition: count(topup, 30d) == 0\n  action: { channel: sms, template: \"充值提醒\" }\n",
    )
    .unwrap();
    let out_dir = dir.0.join("diff");
    let mut c = tidings();
    c.args(["diff", "--config", "/nonexistent.toml", "--rules"])
        .arg(&old)
        .arg("--rules")
        .arg(&new)
        .arg("--events")
        .arg(&events)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out_dir);
    let console = ok(c);
    assert!(!console.contains(a) && !console.contains(b), "the console prints no number:\n{console}");
    assert!(console.contains("total: old 3 sends, new 3; 2 gained, 2 lost"), "{console}");
    // What a hot reload from the old pack to the new would start afresh, and the warning.
    assert!(
        console.contains("a reload from old to new:\n  starts empty: count(topup, 30d) (read by rule lapsed ("),
        "{console}"
    );
    assert!(
        console.contains("  warning: rule lapsed (")
            && console.contains("`count(topup, 30d) == 0` holds for every subscriber"),
        "{console}"
    );
    let d: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("diff.json")).unwrap()).unwrap();
    let list = |k: &str| -> Vec<(String, String, String, String)> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |f: &str| c[f].as_str().unwrap().to_string();
                (s("rule"), s("msisdn"), s("ts"), s("other"))
            })
            .collect()
    };
    let lost = list("lost");
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert_eq!((lost[0].0.as_str(), lost[0].1.as_str(), &lost[0].2[..16]), ("topup_thanks", a, "2026-11-24T10:00"));
    assert!(lost[0].3.starts_with("not a candidate"), "A's 20 CNY is under the new threshold: {}", lost[0].3);
    assert_eq!((lost[1].0.as_str(), lost[1].1.as_str(), &lost[1].2[..16]), ("topup_thanks", b, "2026-11-24T11:00"));
    assert!(lost[1].3.starts_with("suppressed: cap"), "B's second thanks meets the new cap: {}", lost[1].3);
    let gained = list("gained");
    let who: Vec<(&str, &str, &str)> = gained.iter().map(|g| (g.0.as_str(), g.1.as_str(), &g.2[..16])).collect();
    assert_eq!(who, [("big_topup_call", b, "2026-11-24T10:00"), ("big_topup_call", b, "2026-11-24T11:00")]);
    let rules: BTreeMap<String, (u64, u64, u64, u64, u64, u64)> = d["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (
                r["rule"].as_str().unwrap().to_string(),
                (n("old_sent"), n("new_sent"), n("gained"), n("lost"), n("subscribers_gained"), n("subscribers_lost")),
            )
        })
        .collect();
    assert_eq!(rules["topup_thanks"], (3, 1, 0, 2, 0, 2));
    assert_eq!(rules["big_topup_call"], (0, 2, 2, 0, 1, 0));
    assert_eq!(d["reload"]["restarted"][0]["full_after"], "30d", "{}", d["reload"]);
    // Without events: only the reload's report, no replay.
    let mut c = tidings();
    c.args(["diff", "--config", "/nonexistent.toml", "--rules"]).arg(&old).arg("--rules").arg(&new);
    let said = ok(c);
    assert!(said.starts_with("a reload from old to new:\n  starts empty: count(topup, 30d)"), "{said}");
    assert!(said.contains("  warning: rule lapsed (") && !said.contains("total:"), "{said}");
    let mut c = tidings();
    c.args(["diff", "--json", "--config", "/nonexistent.toml", "--rules"]).arg(&old).arg("--rules").arg(&new);
    let j: Value = serde_json::from_str(&ok(c)).unwrap();
    assert_eq!(j["reload"]["warnings"].as_array().map(Vec::len), Some(1), "{j}");
    assert_eq!(j["reload"]["warnings"], d["reload"]["warnings"], "{j}");
    assert_eq!(d["reload"]["warnings"].as_array().map(Vec::len), Some(1), "{}", d["reload"]);
    // The page: the same per-rule figures, numbers masked, action ids to look them up by.
    let html = std::fs::read_to_string(out_dir.join("diff.html")).unwrap();
    assert!(
        html.contains("<ul id=\"diff-reload\">") && html.contains("<li class=\"warn\">warning: rule lapsed"),
        "{html}"
    );
    assert!(!html.contains(a) && !html.contains(b), "the page masks numbers");
    assert!(html.contains("138****8001") && html.contains("138****8002"));
    for (rule, _, cells) in table(&html, "diff-rules") {
        let r = rules[&rule];
        assert_eq!(
            (num(&cells, "old_sent"), num(&cells, "new_sent"), num(&cells, "gained"), num(&cells, "lost")),
            (r.0, r.1, r.2, r.3)
        );
    }
    for g in d["gained"].as_array().unwrap().iter().chain(d["lost"].as_array().unwrap()) {
        assert!(html.contains(g["id"].as_str().unwrap()), "each change's action id is on the page");
    }
    // Per campaign: the same contacts, counted by campaign (they add up to the totals), on the
    // page too.
    let campaigns = d["campaigns"].as_array().unwrap();
    let sum = |k: &str| campaigns.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("old_sent"), sum("new_sent"), sum("gained"), sum("lost")), (3, 3, 2, 2), "{campaigns:?}");
    let rows = table(&html, "diff-campaigns");
    assert_eq!(rows.len(), campaigns.len());
    for (campaign, _, cells) in rows {
        let c = campaigns.iter().find(|c| c["campaign"] == campaign.as_str()).unwrap();
        assert_eq!(num(&cells, "gained"), c["gained"].as_u64().unwrap(), "{campaign}");
        assert_eq!(num(&cells, "lost"), c["lost"].as_u64().unwrap(), "{campaign}");
    }
    assert!(console.contains("campaign"), "{console}");
    // Two packs are required.
    let out = tidings().args(["diff", "--rules"]).arg(&old).arg("--events").arg(&events).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("two rule packs"));
}

/// Hot reload carries a shadow rule's would-be history by name (its own cap still counts what
/// it would have sent), and drops it when the rule goes live (live caps never counted it).
#[test]
fn a_reload_keeps_a_shadow_rules_history_by_name_and_drops_it_when_the_rule_goes_live() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use tidings::engine::{self, EngineOptions, Input};
    use tidings::event::Decoder;
    use tidings::rules::{self, LoadOptions};
    let rd = crate::support::refdata();
    let pack = |text: &str| {
        let loaded = rules::compile(vec![("t.yaml".into(), text.into())], Some(&rd), &LoadOptions::default());
        Arc::new(loaded.rules.expect("the pack compiles"))
    };
    let rule = |name: &str, mode: &str| {
        format!(
            "- rule: {name}\n  mode: {mode}\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  action: {{ channel: sms, template: \"x\" }}\n  policy: {{ cap: \"1 per 1d\", quiet_hours: ignore }}\n"
        )
    };
    let first = pack(&rule("trial", "shadow"));
    // Another rule ahead of it: the shadow rule's index changes, its name does not.
    let renumbered = pack(&(rule("other", "live") + &rule("trial", "shadow")));
    let live = pack(&(rule("other", "live") + &rule("trial", "live")));
    let m = "13800138000";
    let decoder = Decoder::default();
    let ev = |i: u32| {
        let ts = format!("2026-11-24T1{i}:00:00+08:00");
        Input::Item(decoder.decode(topup(m, &ts, 50).as_bytes(), "t", u64::from(i)).expect("a line"))
    };
    let input = vec![ev(0), Input::Reload(renumbered), ev(1), Input::Reload(live), ev(2)];
    let mut sink = tidings::sink::Memory::default();
    let subs = tidings::refdata::Subscribers::new();
    engine::run(
        input.into_iter(),
        first,
        Arc::new(rd.clone()),
        subs,
        &EngineOptions::default(),
        &mut sink,
        &AtomicBool::new(false),
    )
    .expect("run");
    let trial: Vec<(bool, String)> = sink
        .decisions
        .iter()
        .filter(|d| &*d.rule_name == "trial")
        .map(|d| (d.shadow, d.suppression().map_or("sent".to_string(), |r| r.as_str().to_string())))
        .collect();
    assert_eq!(
        trial,
        [(true, "sent".to_string()), (true, "cap".to_string()), (false, "sent".to_string())],
        "10:00 would-be sent; 11:00 its own cap, across the reload; 12:00 live, its shadow history gone"
    );
}

/// On a terminal (a pseudo-terminal from util-linux `script`, Essential in Debian), a replay
/// shows its progress bar with rate and ETA.
#[test]
fn a_replay_on_a_terminal_shows_a_progress_bar() {
    let dir = Dir::new("report-progress");
    let data = dir.0.join("data");
    let mut g = tidings();
    g.args(["gen", "--subscribers", "300", "--events", "20000", "--days", "1", "--out"]).arg(&data);
    ok(g);
    let cmd = format!(
        "{} replay --events {} --data {} --out {}",
        env!("CARGO_BIN_EXE_tidings"),
        data.join("events.jsonl").display(),
        data.display(),
        dir.0.join("out").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // An operator's terminal says what it is (CI may have no TERM at all: then no bar).
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script`");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/20,000 lines") && text.contains("ETA"), "a bar with the total, rate and ETA:\n{text}");
}
