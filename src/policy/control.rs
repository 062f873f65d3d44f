//! Step 4, the campaign's control group: a stable share of subscribers held out of it, so the
//! campaign report can measure its lift -> `control_group`. Who is held out is a hash of number
//! and campaign, the same on every run and every shard. Control groups measure proactive
//! offers: a contact answering the subscriber's own request (`request: true`: the retention
//! call after a disconnection request) is never held out.

use super::ContactPolicy;
use crate::contact::Suppression;
use crate::refdata::Profile;
use crate::rules::Rule;
use crate::util::stable_hash;

/// Whether a subscriber is held out of a campaign: a stable hash of number and campaign,
/// so the same subscribers are held out on every run and every shard.
pub fn in_control_group(msisdn: &str, campaign: &str, percent: f64) -> bool {
    let mut b = Vec::with_capacity(msisdn.len() + campaign.len() + 1);
    b.extend_from_slice(msisdn.as_bytes());
    b.push(0);
    b.extend_from_slice(campaign.as_bytes());
    let bucket = stable_hash(&b) % 10_000;
    (bucket as f64) < percent * 100.0
}

impl ContactPolicy {
    /// Step 4: `sub` is held out of the rule's campaign (never from a request's answer).
    pub(super) fn held_out(&self, rule: &Rule, sub: &Profile) -> Option<(Suppression, String)> {
        if rule.policy.request {
            return None;
        }
        let campaign = &self.rules.campaigns[rule.campaign_idx as usize];
        let pct = campaign.control_group?;
        in_control_group(&sub.msisdn.full(), &campaign.name, pct).then(|| {
            (Suppression::ControlGroup, format!("held out: control group of campaign {} ({pct}%)", campaign.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::policy::parse_percent;

    #[test]
    fn the_held_out_share_follows_the_percentage_and_is_stable() {
        let held = |pct| (0..10_000).filter(|i| in_control_group(&format!("1380000{i:04}"), "c", pct)).count();
        assert_eq!(held(0.0), 0);
        assert_eq!(held(100.0), 10_000);
        let ten = held(10.0);
        assert!((800..1200).contains(&ten), "about a tenth: {ten}");
        assert_eq!(held(10.0), ten, "the same subscribers every time");
        assert!(parse_percent("10%").is_ok_and(|p| p == 10.0) && parse_percent("101").is_err());
    }
}
