//! Rendering: event records to JSON lines, and the live feed that stamps them with the wall
//! clock (`tidings gen --follow`). Lines are written by hand into one `String` each: their field
//! order and number formats are part of the output every test and benchmark is seeded from.

use std::fmt::Write as _;

use super::model::GenOptions;
use super::records::{
    CALL_RESULTS, CH_STORE, COMPLAINT_TOPICS, CREDIT_REASONS, Crm, DATA, DIRS, DISCONNECT_CHANNELS, DISCONNECT_REASONS,
    Ev, FAILURE_CODES, IVR_STEPS, ORDER_ITEMS, PAYMENTS, ProfileSet, SCOPES, SERVICE_KINDS, STORE_TXNS, TOPUP_CHANNELS,
    TRIGGERS, VOICE,
};
use super::stream::Events;
use super::subscribers::{SERVICES, Sub, TIERS, dnd_json, push_prefs, push_str_list};
use super::world::store_id;
use crate::time::{Millis, SECOND, format_ts};

/// Writes the event lines to `out` as a live feed: `rate` lines a second, each stamped with the
/// wall-clock time it is written at (the generated sequence keeps its order; its own times are
/// replaced), until `opts.events` lines are out or `out` is closed. For load tests and demos of
/// a live engine: `tidings gen --follow --rate 100000 | tidings run` with a `stdin` source.
/// Lines go out in slices of a millisecond, so the feed is smooth rather than bursty.
pub fn follow(opts: &GenOptions, rate: u64, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
    const SLICE: std::time::Duration = std::time::Duration::from_millis(1);
    let offset = chrono::FixedOffset::east_opt(opts.offset_secs)
        .ok_or_else(|| std::io::Error::other(format!("bad UTC offset {} s", opts.offset_secs)))?;
    let rate = rate.max(1);
    let start = std::time::Instant::now();
    let mut stamp_ms = Millis::MIN;
    let mut stamp = String::new();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut written = 0u64;
    for line in Events::new(opts) {
        // Due at start + written / rate: wait for it (the feed never runs ahead).
        let due = std::time::Duration::from_nanos(written.saturating_mul(1_000_000_000) / rate);
        let now = start.elapsed();
        if due > now {
            out.write_all(&buf)?;
            out.flush()?;
            buf.clear();
            // A millisecond at least: the lines due meanwhile then go out together. Sleeping
            // until each line's own due time wrote (and woke the reader) once a line.
            std::thread::sleep((due - now).max(SLICE));
        }
        let ms = chrono::Utc::now().timestamp_millis();
        if ms != stamp_ms {
            stamp_ms = ms;
            stamp = format_ts(ms, offset);
        }
        buf.extend_from_slice(restamp(&line, &stamp).as_bytes());
        buf.push(b'\n');
        written += 1;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(written)
}

/// The line with its `"ts"` value replaced.
fn restamp(line: &str, ts: &str) -> String {
    const KEY: &str = "\"ts\":\"";
    let Some(at) = line.find(KEY) else { return line.to_string() };
    let from = at + KEY.len();
    let Some(len) = line[from..].find('"') else { return line.to_string() };
    let mut s = String::with_capacity(line.len() + 8);
    s.push_str(&line[..from]);
    s.push_str(ts);
    s.push_str(&line[from + len..]);
    s
}

impl Events {
    /// Opens line number `emitted + 1`: kind, id, time and subscriber.
    fn head(&mut self, kind: &str, t: Millis, s: &Sub) -> String {
        self.emitted += 1;
        let sec = t.div_euclid(SECOND);
        if sec != self.ts_sec {
            self.ts_sec = sec;
            self.ts_str = format_ts(t, self.m.cal.offset);
        }
        let mut o = String::with_capacity(256);
        let _ = write!(
            o,
            "{{\"kind\":\"{kind}\",\"id\":\"e{:010}\",\"ts\":\"{}\",\"msisdn\":\"{}\"",
            self.emitted, self.ts_str, s.msisdn
        );
        o
    }

    /// The line saying `ev` about `s` at `t`. Balances move here, in line order, so that each
    /// line shows the balance after it whenever its record was decided.
    pub(super) fn render(&mut self, t: Millis, s: &Sub, ev: &Ev) -> String {
        match *ev {
            Ev::Loc { cell, trigger } => {
                let mut o = self.head("location", t, s);
                let c = self.m.world.cells.get(cell as usize);
                let _ = write!(
                    o,
                    ",\"cell\":\"{}\",\"trigger\":\"{}\"",
                    c.map_or("", |c| c.id.as_str()),
                    TRIGGERS[trigger as usize % 4]
                );
                if let Some(country) = c.and_then(|c| c.country) {
                    let _ = write!(o, ",\"country\":\"{country}\"");
                }
                o.push('}');
                o
            }
            Ev::Usage(u) => {
                self.used(s.idx, t);
                // A prepaid account cannot pay more than it holds: the charge shown is what was taken.
                let (charge, balance) = match self.balance_mut(s) {
                    Some(b) => match u.force_after {
                        Some(after) => {
                            *b = after;
                            (u.charge, after)
                        }
                        None => {
                            let taken = u.charge.min((*b).max(0) as u32);
                            *b -= taken as i32;
                            (taken, *b)
                        }
                    },
                    None => (0, 0),
                };
                let mut o = self.head("usage", t, s);
                let _ = write!(
                    o,
                    ",\"service\":\"{}\",\"direction\":\"{}\",\"scope\":\"{}\"",
                    SERVICE_KINDS[u.service as usize % 4],
                    DIRS[u.dir as usize % 2],
                    SCOPES[u.scope as usize % 5]
                );
                if u.service != DATA {
                    let _ = write!(o, ",\"peer\":\"{}\"", u.peer);
                }
                match u.service {
                    VOICE => {
                        let _ = write!(o, ",\"duration_s\":{}", u.duration);
                    }
                    DATA => {
                        let _ = write!(o, ",\"volume_kb\":{}", u.volume);
                    }
                    _ => {
                        let _ = write!(o, ",\"count\":{}", u.count);
                    }
                }
                let _ = write!(
                    o,
                    ",\"charge_fen\":{charge},\"balance_fen\":{balance},\"cell\":\"{}\"",
                    self.m.world.id(u.cell)
                );
                if u.via {
                    o.push_str(",\"via\":\"12593\"");
                }
                o.push('}');
                o
            }
            Ev::Topup { amount, channel, store } => {
                let balance = match self.balance_mut(s) {
                    Some(b) => {
                        *b = b.saturating_add(amount as i32);
                        *b
                    }
                    None => amount as i32,
                };
                let mut o = self.head("topup", t, s);
                let _ = write!(
                    o,
                    ",\"amount_fen\":{amount},\"balance_fen\":{balance},\"channel\":\"{}\"",
                    TOPUP_CHANNELS[channel as usize % 6]
                );
                if channel == CH_STORE {
                    let _ = write!(o, ",\"store\":\"{}\"", store_id(store as usize));
                }
                o.push('}');
                o
            }
            Ev::Ivr { session, step, node, depth } => {
                let mut o = self.head("ivr", t, s);
                let _ = write!(o, ",\"session\":\"s{session}\",\"step\":\"{}\"", IVR_STEPS[step as usize % 4]);
                if depth > 0 {
                    o.push_str(",\"node\":\"");
                    for (k, d) in node.iter().take(depth as usize).enumerate() {
                        if k > 0 {
                            o.push('-');
                        }
                        let _ = write!(o, "{d}");
                    }
                    o.push('"');
                }
                o.push_str(",\"hotline\":\"10086\"}");
                o
            }
            Ev::Crm(crm) => {
                let mut o = self.head("crm", t, s);
                self.crm(&mut o, s, crm);
                o
            }
            Ev::Profile(set) => {
                let mut o = self.head("profile", t, s);
                o.push_str(",\"set\":{");
                match set {
                    ProfileSet::Services(mask) => {
                        o.push_str("\"services\":");
                        push_str_list(&mut o, &SERVICES, mask);
                    }
                    ProfileSet::Dnd(dnd) => {
                        o.push_str("\"dnd\":");
                        o.push_str(dnd_json(dnd));
                    }
                    ProfileSet::Tier(tier) => {
                        let _ = write!(o, "\"tier\":\"{}\"", TIERS[tier as usize % 4]);
                    }
                    ProfileSet::Prefs(mask) => {
                        o.push_str("\"prefs\":");
                        push_prefs(&mut o, &self.m, s.idx, mask);
                    }
                    ProfileSet::Cancelled => o.push_str("\"status\":\"cancelled\""),
                    ProfileSet::PreCancel => o.push_str("\"status\":\"pre_cancel\""),
                    ProfileSet::StayUntil(d) => {
                        let _ = write!(o, "\"stay_until\":\"{}\"", d.format("%Y-%m-%d"));
                    }
                }
                o.push_str("}}");
                o
            }
            Ev::Reply { text } => {
                let mut o = self.head("reply", t, s);
                let text = super::records::REPLY_TEXTS[text as usize % super::records::REPLY_TEXTS.len()];
                let _ = write!(o, ",\"text\":\"{text}\",\"to\":\"10086\",\"gateway\":\"cmpp\"}}");
                o
            }
            Ev::RetentionResult { action, status, reason } => {
                let mut o = self.head("outcome", t, s);
                let status = super::records::RETENTION_RESULTS[status as usize % 3];
                let _ = write!(
                    o,
                    ",\"action_id\":\"a{action:016x}\",\"channel\":\"call\",\"status\":\"{status}\",\"rule\":\"retention_disconnect.call\",\"campaign\":\"retention\""
                );
                if status == "refused" {
                    let detail =
                        super::records::REFUSAL_DETAILS[reason as usize % super::records::REFUSAL_DETAILS.len()];
                    let _ = write!(o, ",\"detail\":\"{detail}\"");
                }
                o.push('}');
                o
            }
            Ev::CallResult { action, status } => {
                let mut o = self.head("outcome", t, s);
                let _ = write!(
                    o,
                    ",\"action_id\":\"a{action:016x}\",\"channel\":\"call\",\"status\":\"{}\",\"rule\":\"complaint_callback\",\"campaign\":\"care_complaint\"}}",
                    CALL_RESULTS[status as usize % 3]
                );
                o
            }
        }
    }

    /// The `event` and `attrs` of a CRM line, closing it; payments and credits go to the balance.
    fn crm(&mut self, o: &mut String, s: &Sub, crm: Crm) {
        let _ = match crm {
            Crm::PointsChanged { points, delta, first } => write!(
                o,
                ",\"event\":\"points_changed\",\"attrs\":{{\"points\":{points},\"delta\":{delta},\"first\":{first}}}}}"
            ),
            Crm::PaymentPosted { amount } => {
                if let Some(b) = self.balance_mut(s) {
                    *b = b.saturating_add(amount);
                }
                write!(o, ",\"event\":\"payment_posted\",\"attrs\":{{\"amount_fen\":{amount}}}}}")
            }
            Crm::BillOverdue { amount, day } => {
                // The bill of a month is due on the 15th of the next: the latest one past due.
                let (month, due) = self.m.cal.info.get(day).map_or((10, 11), |d| {
                    use chrono::Datelike;
                    let back = |m: u32, n: u32| (m + 12 - n - 1) % 12 + 1;
                    let m = d.date.month();
                    let due = if d.date.day() > 15 { m } else { back(m, 1) };
                    (back(due, 1), due)
                });
                write!(
                    o,
                    ",\"event\":\"bill_overdue\",\"attrs\":{{\"amount_fen\":{amount},\"bill_month\":\"{month}月\",\"due_date\":\"{due}月15日\"}}}}"
                )
            }
            Crm::OrderPlaced { order, item } => {
                let (item, amount) = ORDER_ITEMS[item as usize % ORDER_ITEMS.len()];
                write!(
                    o,
                    ",\"event\":\"order_placed\",\"attrs\":{{\"order_id\":\"O{order}\",\"item\":\"{item}\",\"amount_fen\":{amount}}}}}"
                )
            }
            Crm::PointsExpiring { points, day } => {
                let exp = self.m.cal.info.get(day).map_or("", |d| d.month_end.as_str());
                write!(o, ",\"event\":\"points_expiring\",\"attrs\":{{\"points\":{points},\"expires\":\"{exp}\"}}}}")
            }
            Crm::StoreVisit { store, txn, payment } => write!(
                o,
                ",\"event\":\"store_visit\",\"attrs\":{{\"store\":\"{}\",\"txn\":\"{}\",\"payment\":\"{}\"}}}}",
                store_id(store as usize),
                STORE_TXNS[txn as usize % 5],
                PAYMENTS[payment as usize % 5]
            ),
            Crm::ComplaintClosed { complaint, topic } => write!(
                o,
                ",\"event\":\"complaint_closed\",\"attrs\":{{\"complaint_id\":\"K{complaint}\",\"topic\":\"{}\"}}}}",
                COMPLAINT_TOPICS[topic as usize % COMPLAINT_TOPICS.len()]
            ),
            Crm::ContractExpiring { day } => {
                let exp = self.m.cal.info.get(day).map_or("", |d| d.plus30.as_str());
                write!(o, ",\"event\":\"contract_expiring\",\"attrs\":{{\"expires\":\"{exp}\"}}}}")
            }
            Crm::ServiceFailure { code, cell } => write!(
                o,
                ",\"event\":\"service_failure\",\"attrs\":{{\"service\":\"data\",\"code\":\"{}\",\"cell\":\"{}\"}}}}",
                FAILURE_CODES[code as usize % FAILURE_CODES.len()],
                self.m.world.id(cell)
            ),
            Crm::TierChanged { from, to } => write!(
                o,
                ",\"event\":\"tier_changed\",\"attrs\":{{\"from\":\"{}\",\"to\":\"{}\"}}}}",
                TIERS[from as usize % 4],
                TIERS[to as usize % 4]
            ),
            Crm::DiscountCredited { amount, reason } => {
                if let Some(b) = self.balance_mut(s) {
                    *b = b.saturating_add(amount);
                }
                write!(
                    o,
                    ",\"event\":\"discount_credited\",\"attrs\":{{\"amount_fen\":{amount},\"reason\":\"{}\"}}}}",
                    CREDIT_REASONS[reason as usize % CREDIT_REASONS.len()]
                )
            }
            Crm::DisconnectRequested { reason, channel } => write!(
                o,
                ",\"event\":\"disconnect_requested\",\"attrs\":{{\"reason\":\"{}\",\"channel\":\"{}\"}}}}",
                DISCONNECT_REASONS[reason as usize % DISCONNECT_REASONS.len()],
                DISCONNECT_CHANNELS[channel as usize % DISCONNECT_CHANNELS.len()]
            ),
            Crm::CutoverPlanned { cell } => {
                let name = self.m.world.cells.get(cell as usize).map_or("", |c| c.name.as_str());
                let area = name.rsplit_once('-').map_or(name, |(a, _)| a);
                write!(
                    o,
                    ",\"event\":\"cutover_planned\",\"attrs\":{{\"area\":\"{area}\",\"start\":\"明日凌晨1点\",\"cells\":[\"{}\"]}}}}",
                    self.m.world.id(cell)
                )
            }
            Crm::StayCommitment { months } => write!(
                o,
                ",\"event\":\"stay_commitment\",\"attrs\":{{\"months\":{months},\"reward\":\"每月10GB国内流量\"}}}}"
            ),
        };
    }
}
