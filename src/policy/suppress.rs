//! Step 3b, outcome-driven suppression (`suppress_after`): a subscriber who keeps ignoring a
//! rule's or a campaign's offers stops getting them for a while -> `suppressed_after`. Caps
//! limit how often anyone is asked; this listens to what this subscriber answered, so it
//! needs what came of each contact: the contact history's flags, set in event time by the
//! replies that answer a contact ([`ContactPolicy::read_reply`]) and the outcomes that report
//! on one ([`ContactPolicy::read_outcome`]). Both arrive on the subscriber's own shard in input
//! order, so a replay suppresses what live suppressed.
//!
//! An offer is ignored once its response window has passed and nothing answered it; a
//! refused call or a failed delivery counts only when `count:` asks for it. N ignored offers
//! whose first and last are at most D apart suppress the rule (or campaign) for P after the
//! last of them. Transactional messages and orders never pass through here.

use super::ContactPolicy;
use crate::contact::{Decision, Suppression};
use crate::event::{ContactOutcome, OutcomeStatus};
use crate::rules::Rule;
use crate::rules::policy::SuppressAfter;
use crate::state::{ContactLog, ContactRec, SubState};
use crate::time::{Millis, format_ts};

/// The action id's 64 bits as the contact history keeps them (`a{:016x}`).
pub(super) fn id_bits(id: &str) -> Option<u64> {
    let hex = id.strip_prefix('a')?;
    // The engine's own ids (16 digits) without the general parser: every contact made reads one.
    let digits = <&[u8; 16]>::try_from(hex.as_bytes()).ok();
    let fast = digits.and_then(|digits| {
        digits.iter().try_fold(0u64, |n, &c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            Some(n << 4 | u64::from(d))
        })
    });
    fast.or_else(|| u64::from_str_radix(hex, 16).ok())
}

impl ContactPolicy {
    /// Marks the contact an `outcome` event reports on: a call answered (a response), a call
    /// refused, a delivery failed or expired. An outcome for a contact the history no longer
    /// holds changes nothing.
    pub fn read_outcome(&self, o: &ContactOutcome, state: &mut SubState) {
        let flag = match o.status {
            OutcomeStatus::Answered => ContactRec::ANSWERED,
            OutcomeStatus::Refused => ContactRec::REFUSED,
            OutcomeStatus::Failed | OutcomeStatus::Expired => ContactRec::FAILED,
            _ => return,
        };
        if let Some(id) = id_bits(&o.action_id) {
            state.contacts_mut().mark(id, flag);
        }
    }

    /// Whether `d` of `rule` is suppressed because the subscriber ignored the rule's own or its
    /// campaign's recent offers (counted over `log`): the reason and a detail naming the counts.
    pub(super) fn suppressed_after(
        &self,
        rule: &Rule,
        ri: u32,
        d: &Decision,
        log: &ContactLog,
    ) -> Option<(Suppression, String)> {
        if rule.policy.transactional || !d.channel.is_contact() {
            return None;
        }
        if let Some(s) = &rule.policy.suppress_after {
            let ours = |r: &ContactRec| u32::from(r.rule) == ri;
            if let Some(why) = self.ignored_run(s, log, d.ts, ours) {
                return Some((Suppression::SuppressedAfter, why.describe(s, &format!("rule {}", rule.name))));
            }
        }
        if rule.policy.request {
            return None;
        }
        let campaign = &self.rules.campaigns[rule.campaign_idx as usize];
        let s = campaign.suppress_after.as_ref()?;
        let ours = |r: &ContactRec| r.campaign == rule.campaign_idx && r.counts_toward_campaign();
        let why = self.ignored_run(s, log, d.ts, ours)?;
        Some((Suppression::SuppressedAfter, why.describe(s, &format!("campaign {}", campaign.name))))
    }

    /// The latest run of `s.ignored` ignored offers (those of `log` that `ours` selects) at
    /// most `s.within` apart whose pause has not ended by `now`.
    fn ignored_run(
        &self,
        s: &SuppressAfter,
        log: &ContactLog,
        now: Millis,
        ours: impl Fn(&ContactRec) -> bool,
    ) -> Option<Run> {
        let wait = s.response_window.unwrap_or(self.global.reply_window);
        let ignored = |r: &ContactRec| {
            if r.has(ContactRec::ANSWERED) {
                false
            } else if r.has(ContactRec::REFUSED) || r.has(ContactRec::FAILED) {
                (r.has(ContactRec::REFUSED) && s.count_refused) || (r.has(ContactRec::FAILED) && s.count_failed)
            } else {
                r.ts.saturating_add(wait) <= now
            }
        };
        let mut times: Vec<Millis> =
            log.recent.iter().filter(|r| r.ts <= now && ours(r) && ignored(r)).map(|r| r.ts).collect();
        times.sort_unstable();
        let n = s.ignored as usize;
        let (first, last) =
            times.windows(n).rev().map(|w| (w[0], w[n - 1])).find(|(first, last)| last - first <= s.within)?;
        let until = last.saturating_add(s.pause);
        if until <= now {
            return None;
        }
        let offers = log.recent.iter().filter(|r| ours(r) && (first..=now).contains(&r.ts)).count();
        Some(Run { ignored: n, offers, until, offset: self.offset })
    }
}

/// A run of ignored offers that suppresses, for the decision's detail.
struct Run {
    ignored: usize,
    offers: usize,
    until: Millis,
    offset: chrono::FixedOffset,
}

impl Run {
    /// "ignored 2 of the last 2 offers of campaign ip_12593 within 30d; not offered until ...".
    fn describe(&self, s: &SuppressAfter, whose: &str) -> String {
        format!(
            "ignored {} of the last {} offers of {whose} within {}; not offered until {}",
            self.ignored,
            self.offers,
            s.within_text,
            format_ts(self.until, self.offset)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::Channel;
    use crate::rules::policy::GlobalPolicy;
    use crate::time::{DAY, HOUR};

    fn compile(yaml: &str) -> crate::rules::Loaded {
        crate::rules::compile(vec![("p.yaml".into(), yaml.into())], None, &Default::default())
    }

    /// The default global policy over `pack`, in Beijing time.
    fn policy_of(pack: &str) -> ContactPolicy {
        let loaded = compile(pack);
        let rules = loaded.rules.unwrap_or_else(|| panic!("compiles: {:?}", loaded.diagnostics));
        let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
        ContactPolicy::new(GlobalPolicy::default(), std::sync::Arc::new(rules), cst)
    }

    fn policy() -> ContactPolicy {
        policy_of("")
    }

    fn sa(count_refused: bool) -> SuppressAfter {
        SuppressAfter {
            ignored: 2,
            within: 30 * DAY,
            pause: 60 * DAY,
            response_window: Some(3 * DAY),
            count_refused,
            count_failed: false,
            within_text: "30d".into(),
        }
    }

    fn log(recs: &[(Millis, u8)]) -> ContactLog {
        let mut log = ContactLog::default();
        for (i, (ts, flags)) in recs.iter().enumerate() {
            let rec = ContactRec {
                ts: *ts,
                id: i as u64,
                rule: 0,
                campaign: 0,
                channel: Channel::Sms,
                transactional: false,
                flags: *flags,
            };
            log.record(rec, 365 * DAY, None);
        }
        log
    }

    #[test]
    fn a_transactional_message_is_kept_as_long_as_something_reads_it_an_offer_as_long_as_the_caps() {
        let pack = r#"
- rule: confirm
  on: [topup]
  condition: "true"
  action: {channel: sms, template: "ok"}
  policy: {transactional: true}
- rule: confirm_capped
  on: [topup]
  condition: "true"
  action: {channel: sms, template: "ok"}
  policy: {transactional: true, cap: "1 per 5d"}
- rule: offer
  on: [topup]
  condition: "true"
  action: {channel: sms, template: "offer"}
  policy: {cap: "1 per 300d"}
- rule: order
  on: [reply]
  condition: "true"
  action: {channel: order, offer: "X"}
"#;
        let p = policy_of(pack);
        // The reply window (72 h by default) for a plain confirmation, its own cap when longer,
        // the longest cap for an offer, nothing for an order without caps.
        assert_eq!(p.keeps, vec![72 * HOUR, 5 * DAY, 300 * DAY, 0]);
        assert_eq!(p.keep(), 300 * DAY);
    }

    #[test]
    fn two_ignored_offers_within_the_window_suppress_until_the_pause_ends() {
        let p = policy();
        let l = log(&[(0, 0), (10 * DAY, 0)]);
        let run = p.ignored_run(&sa(false), &l, 20 * DAY, |_| true).expect("suppressed");
        assert_eq!((run.ignored, run.offers, run.until), (2, 2, 70 * DAY));
        assert!(
            run.describe(&sa(false), "campaign c")
                .starts_with("ignored 2 of the last 2 offers of campaign c within 30d")
        );
        assert!(p.ignored_run(&sa(false), &l, 70 * DAY, |_| true).is_none(), "lifted after 60d");
    }

    #[test]
    fn an_offer_still_in_its_response_window_is_not_ignored_yet() {
        let l = log(&[(0, 0), (10 * DAY, 0)]);
        assert!(policy().ignored_run(&sa(false), &l, 10 * DAY + 2 * DAY, |_| true).is_none());
        assert!(policy().ignored_run(&sa(false), &l, 10 * DAY + 3 * DAY, |_| true).is_some());
    }

    #[test]
    fn answered_offers_and_offers_too_far_apart_do_not_suppress() {
        let p = policy();
        let answered = log(&[(0, ContactRec::ANSWERED), (10 * DAY, 0)]);
        assert!(p.ignored_run(&sa(false), &answered, 20 * DAY, |_| true).is_none());
        let apart = log(&[(0, 0), (31 * DAY, 0)]);
        assert!(p.ignored_run(&sa(false), &apart, 40 * DAY, |_| true).is_none(), "31d apart, within 30d");
    }

    #[test]
    fn a_refused_call_counts_only_when_count_lists_it() {
        let p = policy();
        let l = log(&[(0, ContactRec::REFUSED), (HOUR, ContactRec::REFUSED)]);
        assert!(p.ignored_run(&sa(false), &l, 2 * HOUR, |_| true).is_none());
        assert!(p.ignored_run(&sa(true), &l, 2 * HOUR, |_| true).is_some(), "counted at once, no window to wait");
    }

    #[test]
    fn an_action_id_reads_back_as_the_64_bits_the_history_keeps() {
        assert_eq!(id_bits("a00000000000000ff"), Some(0xff));
        assert_eq!(id_bits(&format!("a{:016x}", u64::MAX)), Some(u64::MAX));
        assert_eq!(id_bits("x1"), None);
        // Sixteen digits of either case, as the general parser reads them; a bad digit is none.
        for h in [0u64, 1, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, u64::MAX] {
            assert_eq!(id_bits(&format!("a{h:016x}")), Some(h));
            assert_eq!(id_bits(&format!("a{h:016X}")), Some(h));
        }
        assert_eq!(id_bits("a0123456789abcdeg"), None);
        assert_eq!(id_bits("a0123456789abcd-f"), None);
        assert_eq!(id_bits("a+123456789abcdef"), u64::from_str_radix("+123456789abcdef", 16).ok());
    }

    const RULE: &str = "- rule: offer\n  on: [topup]\n  condition: event.amount_fen > 0 fen\n  campaign: c\n  \
                        action: { channel: sms, template: \"hi\" }\n";

    #[test]
    fn suppress_after_parses_on_a_rule_and_a_campaign() {
        let pack = format!(
            "{RULE}  policy:\n    suppress_after: {{ ignored: 2, within: 30d, for: 60d, count: [refused] }}\n\
             - campaign: c\n  policy:\n    suppress_after: {{ ignored: 3, within: 7d, for: 1d, response_window: 1h }}\n"
        );
        let loaded = compile(&pack);
        let set = loaded.rules.unwrap_or_else(|| panic!("compiles: {:?}", loaded.diagnostics));
        let r = set.rules[0].policy.suppress_after.as_ref().expect("the rule's");
        assert_eq!(
            (r.ignored, r.within, r.pause, r.response_window, r.count_refused),
            (2, 30 * DAY, 60 * DAY, None, true)
        );
        let c = set.campaigns[0].suppress_after.as_ref().expect("the campaign's");
        assert_eq!((c.ignored, c.response_window, c.count_failed), (3, Some(HOUR), false));
    }

    #[test]
    fn every_mistake_in_suppress_after_is_reported_where_it_is() {
        let pack =
            format!("{RULE}  policy:\n    suppress_after: {{ ignored: 0, within: soon, count: [refusd], forr: 1d }}\n");
        let loaded = compile(&pack);
        let text: Vec<String> = loaded.diagnostics.iter().map(|d| d.render()).collect();
        let has = |what: &str| text.iter().any(|t| t.contains(what));
        assert!(loaded.rules.is_none());
        assert!(has("p.yaml:7:32") && has("`ignored: 0`"), "{text:?}");
        assert!(has("needs `for`") && has("did you mean `refused`?") && has("did you mean `for`?"), "{text:?}");
        let transactional = format!(
            "{RULE}  policy:\n    transactional: true\n    suppress_after: {{ ignored: 1, within: 1d, for: 1d }}\n"
        );
        let text: Vec<String> = compile(&transactional).diagnostics.iter().map(|d| d.render()).collect();
        assert!(text.iter().any(|t| t.contains("E033") && t.contains("never suppressed")), "{text:?}");
    }
}
