//! The contact history a subscriber's state keeps: only what the declared caps need (records
//! older than the longest cap window are dropped) plus, per campaign with a streak cap, the
//! last month reached and the length of the run. Contact policy reads it to count caps and
//! records every contact it makes in it; how a cap counts is policy's (`policy::Cap::count`).
//! Each record also keeps what came of the contact (a reply answered it, a call was answered or
//! refused, a delivery failed), set in event time as replies and outcomes arrive, for
//! `suppress_after` to tell an ignored offer from an answered one.

use super::{RETIRED, Remap};
use crate::codec::{Bad, Dec, Enc};
use crate::contact::Channel;
use crate::time::Millis;
use crate::util::ThinSlice;

/// One decided contact. 24 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContactRec {
    pub ts: Millis,
    /// Low 64 bits of the action id's hash (arbitration names the winner by it).
    pub id: u64,
    pub rule: u16,
    pub campaign: u16,
    pub channel: Channel,
    pub transactional: bool,
    /// What came of it ([`ContactRec::ANSWERED`], [`ContactRec::REFUSED`],
    /// [`ContactRec::FAILED`]); in the record's padding, so it stays 24 bytes.
    pub flags: u8,
}

impl ContactRec {
    /// A reply answered it, or the call was answered.
    pub const ANSWERED: u8 = 1;
    /// The call was refused.
    pub const REFUSED: u8 = 2;
    /// The delivery failed or expired.
    pub const FAILED: u8 = 4;
    /// The contact answered the subscriber's own request (its rule says `request: true`): its
    /// campaign's caps, streak and `suppress_after` do not count it. Set when it is recorded.
    pub const REQUEST: u8 = 8;

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
    /// Whether campaign, channel and touchpoint caps count this record: a marketing contact, not
    /// a transactional message nor an order (the subscriber's own request, counted only by its
    /// rule's caps).
    pub fn counts_toward_shared_caps(&self) -> bool {
        !self.transactional && self.channel.is_contact()
    }
    /// Whether its campaign's caps and `suppress_after` count this record: a shared-caps contact
    /// that was not an answer to the subscriber's own request.
    pub fn counts_toward_campaign(&self) -> bool {
        self.counts_toward_shared_caps() && !self.has(ContactRec::REQUEST)
    }
}

/// What recent SMS asked about: (record id, what).
pub type Abouts = Vec<(u64, Box<str>)>;

/// Exact-size lists behind thin pointers: most subscribers with a history have one or two
/// contacts in it.
#[derive(Clone, Debug, Default)]
pub struct ContactLog {
    pub recent: ThinSlice<ContactRec>,
    /// (campaign, local month index last reached, consecutive months up to it)
    pub streaks: ThinSlice<(u16, i64, u32)>,
    /// What the SMS in `recent` whose rule says `about:` are about, by record id: a reply
    /// reads it back. Dropped with its record. Boxed: few subscribers have any (8 bytes for
    /// the rest).
    #[allow(clippy::box_collection)] // 8 bytes when absent, where a Vec is 24
    pub(super) abouts: Option<Box<Abouts>>,
}

impl ContactLog {
    /// Records a decided contact; forgets what no cap can see any more (older than `keep`).
    /// `streak_month` is the local month index of the contact when its campaign counts a
    /// streak of consecutive months.
    pub fn record(&mut self, rec: ContactRec, keep: i64, streak_month: Option<i64>) {
        self.record_kept(rec, |_| keep, streak_month);
    }

    /// As [`ContactLog::record`], each record kept as long as `keep` says for its rule index:
    /// what can read a rule's records (its own caps, the shared caps, the reply and arbitration
    /// windows) differs, and a top-up confirmation need not stay a year because a birthday cap
    /// looks back that far.
    pub fn record_kept(&mut self, rec: ContactRec, keep: impl Fn(u16) -> i64, streak_month: Option<i64>) {
        if let Some(month) = streak_month {
            match self.streaks.iter_mut().find(|s| s.0 == rec.campaign) {
                Some(s) if s.1 == month => {}
                Some(s) => {
                    s.2 = if s.1 == month - 1 { s.2 + 1 } else { 1 };
                    s.1 = month;
                }
                None => self.streaks.edit(|v| v.push((rec.campaign, month, 1))),
            }
        }
        let newest = self.recent.iter().map(|r| r.ts).max().unwrap_or(rec.ts).max(rec.ts);
        let kept = |r: &ContactRec| r.ts > newest.saturating_sub(keep(r.rule));
        let add = keep(rec.rule) > 0;
        if self.recent.iter().all(kept) {
            let n = self.recent.len();
            if add {
                self.recent.splice(n..n, &[rec]);
            }
        } else {
            self.recent.edit(|v| {
                v.retain(kept);
                if add {
                    v.push(rec);
                }
            });
        }
        if let Some(abouts) = &mut self.abouts {
            let recent = &self.recent;
            abouts.retain(|(id, _)| recent.iter().any(|r| r.id == *id));
            if abouts.is_empty() {
                self.abouts = None;
            }
        }
    }

    /// Records what the contact `id` (just recorded) is about, if its history keeps it.
    pub fn record_about(&mut self, id: u64, about: &str) {
        if self.recent.iter().any(|r| r.id == id) {
            self.abouts.get_or_insert_with(Box::default).push((id, about.into()));
        }
    }

    /// What the contact `id` is about, if its rule said.
    pub fn about(&self, id: u64) -> Option<&str> {
        self.abouts.as_deref()?.iter().rev().find(|(i, _)| *i == id).map(|(_, a)| &**a)
    }

    /// Marks what came of the contact whose action id hashes to `id` (see [`ContactRec::flags`]);
    /// `false` when the history no longer holds it.
    pub fn mark(&mut self, id: u64, flag: u8) -> bool {
        let Some(i) = self.recent.iter().rposition(|r| r.id == id) else { return false };
        if self.recent[i].has(flag) {
            return true;
        }
        self.recent.as_mut_slice()[i].flags |= flag;
        true
    }

    /// Carries the history over to a new rule set: records of rules and campaigns that are
    /// gone keep counting as [`RETIRED`]; a streak of a campaign that is gone is dropped.
    pub(super) fn remap(&mut self, r: &Remap) {
        let rule = |i: u16| r.rules.get(usize::from(i)).copied().flatten().map_or(RETIRED, |n| n as u16);
        let campaign = |i: u16| r.campaigns.get(usize::from(i)).copied().flatten().unwrap_or(RETIRED);
        if !self.recent.is_empty() {
            self.recent.edit(|v| {
                for c in v.iter_mut() {
                    c.rule = rule(c.rule);
                    c.campaign = campaign(c.campaign);
                }
            });
        }
        if !self.streaks.is_empty() {
            self.streaks.edit(|v| {
                v.retain_mut(|s| {
                    s.0 = campaign(s.0);
                    s.0 != RETIRED
                })
            });
        }
    }

    /// The history as a checkpoint keeps it (part of [`super::SubState::encode`]).
    pub(super) fn encode(&self, e: &mut Enc) {
        e.u32(self.recent.len() as u32);
        for c in self.recent.iter() {
            e.i64(c.ts);
            e.u64(c.id);
            e.u16(c.rule);
            e.u16(c.campaign);
            e.str(c.channel.as_str());
            e.bool(c.transactional);
            e.u8(c.flags);
        }
        e.u32(self.streaks.len() as u32);
        for (c, m, n) in self.streaks.iter() {
            e.u16(*c);
            e.i64(*m);
            e.u32(*n);
        }
        let abouts = self.abouts.as_deref().map_or(&[][..], |v| &v[..]);
        e.u32(abouts.len() as u32);
        for (id, about) in abouts {
            e.u64(*id);
            e.str(about);
        }
    }

    /// Reads what [`ContactLog::encode`] wrote.
    pub(super) fn decode(d: &mut Dec) -> Result<ContactLog, Bad> {
        let n = d.len(27)?;
        let mut recent = Vec::with_capacity(n);
        for _ in 0..n {
            recent.push(ContactRec {
                ts: d.i64()?,
                id: d.u64()?,
                rule: d.u16()?,
                campaign: d.u16()?,
                channel: d.sym(Channel::parse)?,
                transactional: d.bool()?,
                flags: d.u8()?,
            });
        }
        let n = d.len(14)?;
        let streaks: Vec<(u16, i64, u32)> =
            (0..n).map(|_| Ok((d.u16()?, d.i64()?, d.u32()?))).collect::<Result<_, _>>()?;
        let n = if d.at_least(3) { d.len(12)? } else { 0 };
        let abouts: Vec<(u64, Box<str>)> = (0..n).map(|_| Ok((d.u64()?, d.str()?.into()))).collect::<Result<_, _>>()?;
        let abouts = (!abouts.is_empty()).then(|| Box::new(abouts));
        Ok(ContactLog { recent: ThinSlice::from_slice(&recent), streaks: ThinSlice::from_slice(&streaks), abouts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows come from rules (at most 100 years since issue 16), but a sum that wrapped would
    /// turn "within the window" into "never" or "always": the arithmetic saturates.
    #[test]
    fn a_history_kept_past_the_start_of_time_does_not_wrap() {
        let rec =
            |ts| ContactRec { ts, id: 1, rule: 0, campaign: 0, channel: Channel::Sms, transactional: false, flags: 0 };
        let mut log = ContactLog::default();
        log.record(rec(-5_000), i64::MAX, None);
        log.record(rec(1_000), i64::MAX, None);
        assert_eq!(log.recent.iter().count(), 2, "nothing is old enough to forget");
    }

    #[test]
    fn each_record_is_forgotten_when_its_own_rule_stops_looking() {
        let day = crate::time::DAY;
        let rec = |ts, rule| ContactRec {
            ts,
            id: ts as u64,
            rule,
            campaign: 0,
            channel: Channel::Sms,
            transactional: rule == 0,
            flags: 0,
        };
        let keep = |rule: u16| if rule == 0 { 3 * day } else { 300 * day };
        let mut log = ContactLog::default();
        log.record_kept(rec(0, 0), keep, None);
        log.record_kept(rec(0, 1), keep, None);
        log.record_kept(rec(2 * day, 0), keep, None);
        assert_eq!(log.recent.len(), 3, "nothing old enough yet");
        log.record_kept(rec(4 * day, 1), keep, None);
        let left: Vec<(i64, u16)> = log.recent.iter().map(|r| (r.ts, r.rule)).collect();
        assert_eq!(left, vec![(0, 1), (2 * day, 0), (4 * day, 1)], "the first confirmation went, the offer stays");
    }

    #[test]
    fn a_streak_counts_consecutive_months_and_starts_again_after_a_gap() {
        let rec =
            |ts| ContactRec { ts, id: 1, rule: 0, campaign: 3, channel: Channel::Sms, transactional: false, flags: 0 };
        let mut log = ContactLog::default();
        log.record(rec(1), 1, Some(10));
        log.record(rec(2), 1, Some(10));
        log.record(rec(3), 1, Some(11));
        assert_eq!(log.streaks.iter().copied().collect::<Vec<_>>(), [(3, 11, 2)]);
        log.record(rec(4), 1, Some(13));
        assert_eq!(log.streaks.iter().copied().collect::<Vec<_>>(), [(3, 13, 1)]);
        assert_eq!(log.recent.iter().map(|r| r.ts).collect::<Vec<_>>(), [4], "keep 1 ms: only the newest");
    }
}
