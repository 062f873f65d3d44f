//! The report as one self-contained HTML page: inline CSS, charts as inline SVG written here
//! (a few rectangles and lines do not need a plotting crate), no script but the figures
//! themselves as JSON (`<script type="application/json" id="report-data">`), which tools and
//! the tests read. Tables carry stable ids, `data-key` per row and `data-k` per cell, so the
//! visible numbers can be checked against the embedded ones.

use super::{Figures, PerChannel, REASONS, Row};
use crate::contact::Channel;
use std::fmt::Write as _;

/// One colour per channel, in `Channel` order.
const COLOURS: [&str; Channel::COUNT] = ["#2f6db5", "#e08a1e", "#4a9d5b", "#8a4fb0"];
const CHANNELS: &[&str] = Channel::NAMES;

pub const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','Microsoft YaHei',sans-serif;\
margin:24px auto;max-width:1240px;padding:0 16px;color:#1d2330;background:#fff}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}\
.meta{color:#5a6477;font-size:13px}table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}\
th,td{border:1px solid #d8dde6;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f2f4f8;font-weight:600;white-space:normal}\
td.l,th.l{text-align:left}tr.shadow td{background:#fbf6e9}.tag{font-size:11px;padding:1px 5px;border-radius:3px;background:#eef1f6}\
.tag.shadow{background:#f3dfa6}.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #d8dde6;border-radius:6px;\
padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}.card span{color:#5a6477;font-size:12px}\
.grid{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}svg text{font:11px system-ui,sans-serif;fill:#3a4456}\
.note{color:#5a6477;font-size:12px;max-width:900px}details{margin:4px 0}.scroll{overflow-x:auto}\
table.wide{font-size:12.5px}table.wide th,table.wide td{padding:2px 6px}li.warn{color:#9a3412;font-weight:600}";

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// JSON that is safe inside a `<script>` element: `<` never appears raw (`\u003c` is the same
/// string to a JSON reader).
pub fn script_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into()).replace('<', "\\u003c")
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// Opens a page: doctype, UTF-8, title, style.
pub fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    );
}

/// A two-column table of named counts.
fn kv_table(out: &mut String, id: &str, head: (&str, &str), rows: &[(String, u64)]) {
    let _ = write!(out, "<table id=\"{id}\"><tr><th class=\"l\">{}</th><th>{}</th></tr>", head.0, head.1);
    if rows.is_empty() {
        out.push_str("<tr><td class=\"l\" colspan=\"2\">none</td></tr>");
    }
    for (k, v) in rows {
        let _ = write!(
            out,
            "<tr data-key=\"{}\"><td class=\"l\">{}</td><td data-k=\"n\">{v}</td></tr>",
            escape(k),
            escape(k)
        );
    }
    out.push_str("</table>\n");
}

fn row_cells(out: &mut String, r: &Row) {
    let _ = write!(
        out,
        "<td data-k=\"fired\">{}</td><td data-k=\"sent\">{}</td><td data-k=\"messages\">{}</td>",
        r.fired, r.sent, r.messages
    );
    for reason in REASONS {
        let n = r.suppressed.get(reason.as_str()).copied().unwrap_or(0);
        let _ = write!(out, "<td data-k=\"{}\">{n}</td>", reason.as_str());
    }
    let _ = write!(
        out,
        "<td data-k=\"deferred\">{}</td><td data-k=\"subscribers\">{}</td></tr>",
        r.deferred, r.subscribers
    );
}

fn reason_heads(out: &mut String) {
    out.push_str("<th>fired</th><th>sent</th><th>SMS<br>messages</th>");
    for r in REASONS {
        let _ = write!(out, "<th>{}</th>", r.as_str().replace('_', " "));
    }
    out.push_str("<th>deferred<br>at end</th><th>subscribers</th></tr>");
}

/// A count and its share, as a reply table cell pair.
fn count_rate(out: &mut String, key: &str, n: u64, rate: Option<f64>) {
    let v = rate.map_or(String::new(), |v| v.to_string());
    let _ = write!(out, "<td data-k=\"{key}\">{n}</td><td data-k=\"{key}_rate\" data-v=\"{v}\">{}</td>", pct(rate));
}

/// Replies: reply, opt-out and acceptance rates per campaign and rule, and survey scores.
fn replies_section(o: &mut String, f: &super::replies::ReplyFigures) {
    o.push_str("<h2>Replies</h2>\n<p class=\"note\">A reply is tied to the latest live SMS sent to the subscriber from the number it went to, \
within the reply window (as contact policy ties it). Replied, opted out and accepted count SMS: answered at all, answered with an unsubscribe \
keyword, answered with a reply that placed an order the order interface accepted; each rate is a share of the SMS sent.</p>\n");
    let _ = writeln!(
        o,
        "<table id=\"reply-totals\"><tr data-key=\"replies\"><th class=\"l\">replies read</th><td data-k=\"n\">{}</td></tr>\
<tr data-key=\"untied\"><th class=\"l\">answering no SMS in the window</th><td data-k=\"n\">{}</td></tr>\
<tr data-key=\"untied_opt_outs\"><th class=\"l\">of those, refusals (all marketing)</th><td data-k=\"n\">{}</td></tr></table>",
        f.replies, f.untied, f.untied_opt_outs
    );
    for (id, what, rows) in [("reply-campaigns", "campaign", &f.campaigns), ("reply-rules", "rule", &f.rules)] {
        let _ = write!(
            o,
            "<div class=\"scroll\"><table id=\"{id}\" class=\"wide\"><tr><th class=\"l\">{what}</th><th>SMS sent</th>\
<th>replied</th><th>rate</th><th>opted out</th><th>rate</th><th>accepted</th><th>rate</th></tr>"
        );
        if rows.is_empty() {
            o.push_str("<tr><td class=\"l\" colspan=\"8\">no live SMS</td></tr>");
        }
        for r in rows {
            let _ = write!(
                o,
                "<tr data-key=\"{}\"><td class=\"l\">{}</td><td data-k=\"sms\">{}</td>",
                escape(&r.name),
                escape(&r.name),
                r.sms
            );
            count_rate(o, "replied", r.replied, r.reply_rate);
            count_rate(o, "opted_out", r.opted_out, r.opt_out_rate);
            count_rate(o, "accepted", r.accepted, r.acceptance_rate);
            o.push_str("</tr>");
        }
        o.push_str("</table></div>\n");
    }
    if f.scores.is_empty() {
        return;
    }
    o.push_str("<h3>Survey scores</h3>\n<p class=\"note\">Replies that are a whole number from 0 to 10, to an SMS whose rule says what it asks \
about (<code>about:</code>, e.g. the store).</p>\n<table id=\"scores\"><tr><th class=\"l\">rule</th><th class=\"l\">about</th><th>answers</th><th>mean</th>\
<th class=\"l\">scores</th></tr>");
    for s in &f.scores {
        let spread: Vec<String> = s.scores.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        let _ = write!(
            o,
            "<tr data-key=\"{}/{}\"><td class=\"l\">{}</td><td class=\"l\">{}</td><td data-k=\"answers\">{}</td><td data-k=\"mean\" data-v=\"{}\">{:.2}</td>\
<td class=\"l\">{}</td></tr>",
            escape(&s.rule),
            escape(&s.about),
            escape(&s.rule),
            escape(&s.about),
            s.answers,
            s.mean,
            s.mean,
            spread.join(" · ")
        );
    }
    o.push_str("</table>\n");
}

fn mode_tag(mode: &str) -> String {
    format!("<span class=\"tag {mode}\">{mode}</span>")
}

/// A round axis maximum at or above `v` (1, 2 or 5 times a power of ten).
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|x| *x >= v).unwrap_or(10.0 * p)
}

/// Hourly actions by channel, stacked bars, with the shadow rules' would-be actions as a dashed
/// line when there are any.
pub fn timeline_svg(out: &mut String, live: &[(String, PerChannel)], shadow: &[(String, PerChannel)]) {
    let (w, h, left, bottom, top) = (1100.0, 240.0, 48.0, 36.0, 14.0);
    let n = live.len().max(1);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let total = |v: &PerChannel| v.iter().sum::<u64>();
    let max_live = live.iter().map(|(_, v)| total(v)).max().unwrap_or(0);
    let max_shadow = shadow.iter().map(|(_, v)| total(v)).max().unwrap_or(0);
    let ymax = nice(max_live.max(max_shadow) as f64);
    let bw = plot_w / n as f64;
    let y = |v: f64| top + plot_h - v / ymax * plot_h;
    let _ = write!(
        out,
        "<svg id=\"timeline-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"actions per hour by channel\">"
    );
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - 10.0,
            left - 4.0,
            y(v) + 4.0,
            v.round(),
            y = y(v)
        );
    }
    for (i, (_, v)) in live.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut acc = 0.0;
        for (c, n) in v.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let y0 = y(acc);
            acc += *n as f64;
            let y1 = y(acc);
            let _ = write!(
                out,
                "<rect x=\"{:.2}\" y=\"{y1:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                x + bw * 0.08,
                (bw * 0.84).max(0.5),
                y0 - y1,
                COLOURS[c]
            );
        }
    }
    if !shadow.is_empty() {
        let pts: Vec<String> = shadow
            .iter()
            .enumerate()
            .map(|(i, (_, v))| format!("{:.1},{:.1}", left + (i as f64 + 0.5) * bw, y(total(v) as f64)))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#b0761b\" stroke-width=\"1.6\" stroke-dasharray=\"4 3\"/>",
            pts.join(" ")
        );
    }
    // Hour labels: about a dozen, on whole local hours.
    let step = n.div_ceil(12).max(1);
    for (i, (t, _)) in live.iter().enumerate().step_by(step) {
        let label = t.get(5..13).unwrap_or(t).replace('T', " ");
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            left + (i as f64 + 0.5) * bw,
            h - bottom + 14.0,
            escape(&label)
        );
    }
    let mut lx = left;
    for (c, name) in CHANNELS.iter().enumerate() {
        let _ = write!(
            out,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            h - 14.0,
            COLOURS[c],
            lx + 14.0,
            h - 5.0
        );
        lx += 70.0;
    }
    if !shadow.is_empty() {
        let _ = write!(
            out,
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#b0761b\" stroke-dasharray=\"4 3\" stroke-width=\"1.6\"/><text x=\"{}\" y=\"{}\">shadow rules (would-be, all channels)</text>",
            lx + 18.0,
            lx + 22.0,
            h - 5.0,
            y0 = h - 9.0
        );
    }
    out.push_str("</svg>\n");
}

/// Bars the contacts chart draws at most; the tail is one bar (`15+`). The table has them all.
const CONTACT_BARS: usize = 16;

/// Subscribers by number of contacts, on a log scale (most get none).
pub fn contacts_svg(out: &mut String, dist: &[u64]) {
    let mut bars: Vec<(String, u64)> =
        dist.iter().take(CONTACT_BARS - 1).enumerate().map(|(i, n)| (i.to_string(), *n)).collect();
    if dist.len() >= CONTACT_BARS {
        bars.push((format!("{}+", CONTACT_BARS - 1), dist[CONTACT_BARS - 1..].iter().sum()));
    }
    let (h, left, bottom, top) = (220.0, 48.0, 30.0, 18.0);
    let bw = 44.0;
    let w = left + bw * bars.len().max(1) as f64 + 10.0;
    let plot_h = h - bottom - top;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1) as f64;
    let top_log = (max + 1.0).log10().ceil().max(1.0);
    let y = |v: f64| top + plot_h - (v + 1.0).log10() / top_log * plot_h;
    let _ = write!(
        out,
        "<svg id=\"contacts-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"subscribers by number of contacts\">"
    );
    for p in 0..=top_log as i32 {
        let v = 10f64.powi(p) - 1.0;
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e7ee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - 10.0,
            left - 4.0,
            y(v) + 4.0,
            v + 1.0,
            yy = y(v)
        );
    }
    for (i, (label, n)) in bars.iter().enumerate() {
        let x = left + i as f64 * bw;
        let y1 = y(*n as f64);
        let colour = if i >= 3 { "#c4452f" } else { COLOURS[0] };
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x + 6.0,
            bw - 12.0,
            top + plot_h - y1,
            x + bw / 2.0,
            y1 - 3.0,
            x + bw / 2.0,
            h - bottom + 14.0
        );
    }
    out.push_str("</svg>\n");
}

/// The campaign report page.
pub fn render(f: &Figures) -> String {
    let mut o = String::with_capacity(64 * 1024);
    head(&mut o, &f.title);
    let _ = write!(o, "<h1>{}</h1>\n<p class=\"meta\">", escape(&f.title));
    let _ = write!(
        o,
        "input {} · event time {} … {} · rule pack {}</p>",
        escape(&f.inputs.join(", ")),
        escape(f.first_event.as_deref().unwrap_or("–")),
        escape(f.last_event.as_deref().unwrap_or("–")),
        escape(&f.rules_version)
    );
    let t = &f.totals;
    o.push_str("<h2>Totals</h2>\n<div class=\"cards\" id=\"totals\">");
    for (k, label, v) in [
        ("events", "events", t.events),
        ("dead_letters", "dead letters", t.dead_letters),
        ("candidates", "candidate contacts", t.candidates),
        ("actions", "actions sent", t.actions),
        ("sms_messages", "SMS messages (billed)", t.sms_messages),
        ("suppressed", "suppressed", t.suppressed),
        ("deferred_pending", "deferred at end", t.deferred_pending),
        ("shadow_actions", "shadow would-be actions", t.shadow_actions),
        ("subscribers", "subscribers", t.subscribers),
    ] {
        let _ = write!(o, "<div class=\"card\" data-key=\"{k}\"><b data-k=\"n\">{v}</b><span>{label}</span></div>");
    }
    o.push_str("</div>\n<div class=\"grid\"><div><h3>Events by kind</h3>");
    kv_table(
        &mut o,
        "events-by-kind",
        ("kind", "events"),
        &f.totals.events_by_kind.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>(),
    );
    o.push_str("</div><div><h3>Dead letters by reason</h3>");
    kv_table(
        &mut o,
        "dead-letters",
        ("reason", "lines"),
        &f.dead_letters.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>(),
    );
    o.push_str("</div><div><h3>Actions by channel</h3><table id=\"actions-by-channel\"><tr><th class=\"l\">channel</th><th>sent</th><th>shadow (would-be)</th></tr>");
    for &c in CHANNELS {
        let _ = write!(
            o,
            "<tr data-key=\"{c}\"><td class=\"l\">{c}</td><td data-k=\"sent\">{}</td><td data-k=\"shadow\">{}</td></tr>",
            f.actions_by_channel.get(c).copied().unwrap_or(0),
            f.shadow_by_channel.get(c).copied().unwrap_or(0)
        );
    }
    o.push_str("</table></div><div><h3>Suppressions by reason</h3>");
    kv_table(
        &mut o,
        "suppressions",
        ("reason", "contacts"),
        &REASONS
            .iter()
            .map(|r| (r.as_str().to_string(), f.suppressed.get(r.as_str()).copied().unwrap_or(0)))
            .collect::<Vec<_>>(),
    );
    o.push_str("</div></div>\n");

    o.push_str("<h2>Actions per hour (local time)</h2>\n");
    timeline_svg(&mut o, &f.timeline, &f.timeline_shadow);
    o.push_str("<details><summary>as a table</summary><table id=\"timeline\"><tr><th class=\"l\">hour</th><th>sms</th><th>call</th><th>ivr</th><th>order</th><th>shadow</th></tr>");
    for (i, (h, v)) in f.timeline.iter().enumerate() {
        let sh: u64 = f.timeline_shadow.get(i).map_or(0, |s| s.1.iter().sum());
        let _ = write!(
            o,
            "<tr data-key=\"{}\"><td class=\"l\">{}</td><td data-k=\"sms\">{}</td><td data-k=\"call\">{}</td><td data-k=\"ivr\">{}</td><td data-k=\"order\">{}</td><td data-k=\"shadow\">{sh}</td></tr>",
            escape(h),
            escape(h),
            v[0],
            v[1],
            v[2],
            v[3]
        );
    }
    o.push_str("</table></details>\n<h2>Contacts per subscriber</h2>\n<p class=\"note\">Live actions each subscriber received in this stream (log scale; three or more in red).</p>\n<div class=\"grid\"><div>");
    contacts_svg(&mut o, &f.contacts_per_subscriber);
    o.push_str("</div><div>");
    kv_table(
        &mut o,
        "contacts-per-subscriber",
        ("contacts", "subscribers"),
        &f.contacts_per_subscriber.iter().enumerate().map(|(i, n)| (i.to_string(), *n)).collect::<Vec<_>>(),
    );
    o.push_str("</div></div>\n");

    o.push_str("<h2>Delivery and call outcomes</h2>\n");
    if f.outcomes.by_channel.is_empty() {
        o.push_str("<p class=\"note\" id=\"no-outcomes\">No outcome events in the input (replay <code>outcomes.jsonl</code> with the events to see delivery and answer rates).</p>\n");
    } else {
        let _ = write!(
            o,
            "<table id=\"outcome-rates\"><tr data-key=\"delivery_rate\"><th class=\"l\">SMS delivery rate</th><td data-k=\"rate\" data-v=\"{}\">{}</td></tr><tr data-key=\"answer_rate\"><th class=\"l\">call answer rate</th><td data-k=\"rate\" data-v=\"{}\">{}</td></tr></table>",
            f.outcomes.delivery_rate.map_or(String::new(), |v| v.to_string()),
            pct(f.outcomes.delivery_rate),
            f.outcomes.answer_rate.map_or(String::new(), |v| v.to_string()),
            pct(f.outcomes.answer_rate)
        );
        o.push_str(
            "<table id=\"outcomes\"><tr><th class=\"l\">channel</th><th class=\"l\">status</th><th>reports</th></tr>",
        );
        for (ch, by) in &f.outcomes.by_channel {
            for (st, n) in by {
                let _ = write!(
                    o,
                    "<tr data-key=\"{ch}/{st}\"><td class=\"l\">{ch}</td><td class=\"l\">{st}</td><td data-k=\"n\">{n}</td></tr>"
                );
            }
        }
        o.push_str("</table>\n");
    }

    replies_section(&mut o, &f.replies);

    o.push_str("<h2>Lift against the control group</h2>\n<p class=\"note\">Response rate of the treatment arm (every candidate that passed the \
control-group step: intention to treat) against the held-out control group. Lift = treatment − control, with a 95 % Newcombe \
hybrid score interval; relative lift = lift ÷ control. A response window that runs past the end of the input counts what the input holds.</p>\n");
    if f.lift.is_empty() {
        o.push_str(
            "<p class=\"note\" id=\"no-lift\">No campaign with a control group decided anything in this input.</p>\n",
        );
    } else {
        o.push_str("<div class=\"scroll\"><table id=\"lift\" class=\"wide\"><tr><th class=\"l\">campaign</th><th class=\"l\">response</th><th>treatment</th><th>responded</th><th>rate</th>\
<th>control</th><th>responded</th><th>rate</th><th>lift</th><th>95 % interval</th><th>relative</th><th>contacted</th></tr>");
        for l in &f.lift {
            let (lift, ci, rel) = match &l.lift {
                Some(x) => (
                    format!("{:+.1} pt", x.diff * 100.0),
                    format!("{:+.1} … {:+.1} pt", x.low * 100.0, x.high * 100.0),
                    x.relative.map_or("–".into(), |r| format!("{:+.0} %", r * 100.0)),
                ),
                None => ("–".into(), "–".into(), "–".into()),
            };
            let _ = write!(
                o,
                "<tr data-key=\"{}\"><td class=\"l\">{}</td><td class=\"l\">{}</td><td data-k=\"treatment_n\">{}</td><td data-k=\"treatment_responders\">{}</td><td>{}</td>\
<td data-k=\"control_n\">{}</td><td data-k=\"control_responders\">{}</td><td>{}</td><td data-k=\"lift\">{lift}</td><td>{ci}</td><td>{rel}</td><td data-k=\"contacted\">{}</td></tr>",
                escape(&l.campaign),
                escape(&l.campaign),
                escape(&l.response),
                l.treatment.n,
                l.treatment.responders,
                pct(l.treatment.p()),
                l.control.n,
                l.control.responders,
                pct(l.control.p()),
                l.contacted
            );
        }
        o.push_str("</table></div>\n");
    }
    o.push_str("<h2>Rules</h2>\n<p class=\"note\">Fired: candidate contacts (a contact held for quiet hours counts once). \
Shadow rules are evaluated under the same policy but never send: their “sent” is what they would have sent.</p>\n\
<div class=\"scroll\"><table id=\"rules\" class=\"wide\"><tr><th class=\"l\">rule</th><th class=\"l\">mode</th><th class=\"l\">campaign</th><th class=\"l\">channel</th>");
    reason_heads(&mut o);
    for r in &f.rules {
        let _ = write!(
            o,
            "<tr data-key=\"{}\" data-mode=\"{}\" class=\"{}\"><td class=\"l\" title=\"{}\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            escape(&r.name),
            r.mode,
            r.mode,
            escape(&r.desc),
            escape(&r.name),
            mode_tag(r.mode),
            escape(r.campaign.as_deref().unwrap_or("")),
            r.channel.unwrap_or("")
        );
        row_cells(&mut o, r);
    }
    o.push_str("</table></div>\n<h2>Campaigns</h2>\n<div class=\"scroll\"><table id=\"campaigns\" class=\"wide\"><tr><th class=\"l\">campaign</th><th class=\"l\">mode</th>");
    reason_heads(&mut o);
    for r in &f.campaigns {
        let _ = write!(
            o,
            "<tr data-key=\"{}\" data-mode=\"{}\" class=\"{}\"><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            escape(&r.name),
            r.mode,
            r.mode,
            escape(&r.name),
            mode_tag(r.mode)
        );
        row_cells(&mut o, r);
    }
    o.push_str("</table></div>\n");
    let _ =
        write!(o, "<script type=\"application/json\" id=\"report-data\">{}</script>\n</body></html>\n", script_json(f));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_cannot_break_out_of_the_page() {
        assert_eq!(escape("<b>\"a\" & 'b'</b>"), "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;");
        let j = script_json(&serde_json::json!({"desc": "</script><script>alert(1)</script>", "名": "冬季"}));
        assert!(!j.contains("</script>") && !j.contains('<'), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["desc"], "</script><script>alert(1)</script>", "the same string to a JSON reader");
        assert_eq!(back["名"], "冬季");
    }

    #[test]
    fn a_long_contacts_tail_is_one_bar_and_axes_are_round() {
        let mut svg = String::new();
        let dist: Vec<u64> = (0..40).map(|i| 40 - i).collect();
        contacts_svg(&mut svg, &dist);
        assert_eq!(svg.matches("<rect").count(), CONTACT_BARS);
        let tail: u64 = dist[CONTACT_BARS - 1..].iter().sum();
        assert!(svg.contains(">15+</text>") && svg.contains(&format!(">{tail}</text>")), "{svg}");
        assert_eq!((nice(0.0), nice(7.0), nice(130.0), nice(500.0)), (1.0, 10.0, 200.0, 500.0));
    }
}
