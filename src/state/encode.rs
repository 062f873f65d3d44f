//! A subscriber's state as a checkpoint record: [`SubState::encode`] and [`SubState::decode`],
//! every part in a fixed order, newer parts read only from the formats that have them.

use super::*;
use crate::contact::{Deferred, TriggerRef, Written};

/// A cell index as the checkpoint keeps it: by the cell's id, so that a changed cell table
/// between two runs maps the subscriber to the same cell (or to none when it is gone).
fn enc_cell(e: &mut crate::codec::Enc, c: u32, refdata: &RefData) {
    match known(c).and_then(|c| refdata.cells.get(c as usize)) {
        Some(cell) => {
            e.u8(2);
            e.str(&cell.id);
        }
        None => e.u8(u8::from(c == UNKNOWN_CELL)),
    }
}

fn dec_cell(d: &mut crate::codec::Dec, refdata: &RefData) -> Result<u32, crate::codec::Bad> {
    Ok(match d.u8()? {
        0 => NO_CELL,
        1 => UNKNOWN_CELL,
        _ => refdata.cell(d.str()?).unwrap_or(NO_CELL),
    })
}

impl SubState {
    /// Appends this state to a checkpoint record.
    pub fn encode(&self, e: &mut crate::codec::Enc, refdata: &RefData) {
        e.u32(self.events_seen);
        e.u32(self.cell_changed_at);
        enc_cell(e, self.cell, refdata);
        enc_cell(e, self.prev_cell, refdata);
        enc_cell(e, self.last_cell, refdata);
        e.u8(self.flags);
        for t in [
            self.last_event_at,
            self.cell_since,
            self.last_usage_at,
            self.last_topup_at,
            self.last_topup_fen,
            self.balance,
            self.prev_balance,
            self.last_cell_seen,
        ] {
            e.i64(t);
        }
        e.u32(self.zone_since.len() as u32);
        self.zone_since.iter().for_each(|t| e.i64(*t));
        e.u32(self.older_cells.len() as u32);
        for (c, t) in self.older_cells.iter() {
            enc_cell(e, *c, refdata);
            e.i64(*t);
        }
        e.u32(self.aggs.len() as u32);
        for b in self.aggs.iter() {
            e.u64(b.key);
            e.i64(b.sum);
        }
        e.u32(self.derived().len() as u32);
        self.derived().iter().for_each(|x| x.encode(e));
        let Some(r) = &self.rare else { return e.bool(false) };
        e.bool(true);
        e.u32(r.seqs.len() as u32);
        for s in &r.seqs {
            e.u32(s.starts.len() as u32);
            s.starts.iter().for_each(|t| e.opt_i64(*t));
            e.u32(s.done_at);
        }
        e.u32(r.recent_ivr.len() as u32);
        for i in &r.recent_ivr {
            e.i64(i.ts);
            e.str(i.step.as_str());
            e.opt_str(i.node.as_deref());
        }
        e.u32(r.timers.len() as u32);
        for t in &r.timers {
            e.i64(t.due);
            e.u32(t.rule);
            e.str(t.trigger.kind);
            e.str(&t.trigger.id);
            e.i64(t.trigger.ts);
            e.u64(t.armed_at);
            let w = &t.written;
            [&w.text, &w.script, &w.queue, &w.about].into_iter().for_each(|s| e.opt_str(s.as_deref()));
            e.bool(t.deferred.is_some());
            if let Some(d) = &t.deferred {
                e.str(&d.id);
                e.opt_i64(d.expires);
            }
            super::kept::encode(&t.kept, e);
        }
        r.contacts.encode(e);
        e.opt_str(r.country.as_deref());
        e.opt_str(r.unknown_cell.as_deref());
        let optouts = r.optouts.as_deref().map_or(&[][..], |v| &v[..]);
        e.u32(optouts.len() as u32);
        for o in optouts {
            e.i64(o.ts);
            e.str(o.scope.as_str());
            e.opt_str(o.campaign.as_deref());
            e.str(&o.keyword);
            e.str(&o.to);
            e.str(&o.reply);
        }
        let journeys = r.journeys.as_deref().map_or(&[][..], |v| &v[..]);
        e.u32(journeys.len() as u32);
        journeys.iter().for_each(|j| j.encode(e));
    }

    /// Reads a state [`SubState::encode`] wrote.
    pub fn decode(d: &mut crate::codec::Dec, refdata: &RefData) -> Result<SubState, crate::codec::Bad> {
        let mut s = SubState {
            events_seen: d.u32()?,
            cell_changed_at: d.u32()?,
            cell: dec_cell(d, refdata)?,
            prev_cell: dec_cell(d, refdata)?,
            last_cell: dec_cell(d, refdata)?,
            flags: d.u8()?,
            last_event_at: d.i64()?,
            cell_since: d.i64()?,
            last_usage_at: d.i64()?,
            last_topup_at: d.i64()?,
            last_topup_fen: d.i64()?,
            balance: d.i64()?,
            prev_balance: d.i64()?,
            last_cell_seen: d.i64()?,
            ..SubState::default()
        };
        let n = d.len(8)?;
        let zones: Vec<Millis> = (0..n).map(|_| d.i64()).collect::<Result<_, _>>()?;
        s.zone_since = ThinSlice::from_slice(&zones);
        let n = d.len(9)?;
        let mut older = Vec::with_capacity(n);
        for _ in 0..n {
            let (c, t) = (dec_cell(d, refdata)?, d.i64()?);
            // A cell gone from the reference data is forgotten.
            if known(c).is_some() {
                older.push((c, t));
            }
        }
        s.older_cells = ThinSlice::from_slice(&older);
        let n = d.len(16)?;
        let aggs: Vec<AggBucket> =
            (0..n).map(|_| Ok(AggBucket { key: d.u64()?, sum: d.i64()? })).collect::<Result<_, _>>()?;
        s.aggs = ThinSlice::from_slice(&aggs);
        if d.at_least(4) {
            let n = d.len(21)?;
            let derived: Vec<Derived> = (0..n).map(|_| Derived::decode(d)).collect::<Result<_, _>>()?;
            s.derived = ThinSlice::from_slice(&derived);
        }
        if !d.bool()? {
            return Ok(s);
        }
        let mut r = Rare::default();
        let n = d.len(8)?;
        for _ in 0..n {
            let k = d.len(1)?;
            let starts = (0..k).map(|_| d.opt_i64()).collect::<Result<_, _>>()?;
            r.seqs.push(SeqState { starts, done_at: d.u32()? });
        }
        let n = d.len(13)?;
        for _ in 0..n {
            let ts = d.i64()?;
            let step = d.sym(IvrStep::parse)?;
            r.recent_ivr.push_back(IvrStepRec { ts, step, node: d.opt_str()?.map(Into::into) });
        }
        let n = d.len(40)?;
        for _ in 0..n {
            let due = d.i64()?;
            let rule = d.u32()?;
            let trigger = TriggerRef { kind: checkpoint::trigger_kind(d.str()?)?, id: d.str()?.into(), ts: d.i64()? };
            let armed_at = d.u64()?;
            let v3 = d.at_least(3);
            let mut s = || d.opt_str().map(|s| s.map(Box::from));
            let mut written = Written { text: s()?, script: s()?, ..Written::default() };
            if v3 {
                (written.queue, written.about) = (s()?, s()?);
            }
            let deferred =
                if d.bool()? { Some(Deferred { id: d.str()?.to_owned(), expires: d.opt_i64()? }) } else { None };
            let kept = if d.at_least(7) { super::kept::decode(d)? } else { Default::default() };
            r.timers.push(PendingTimer { due, rule, trigger, armed_at, written, deferred, kept });
        }
        r.contacts = ContactLog::decode(d)?;
        r.country = d.opt_str()?.map(Into::into);
        r.unknown_cell = d.opt_str()?.map(Into::into);
        let n = if d.at_least(2) { d.len(24)? } else { 0 };
        for _ in 0..n {
            r.optouts.get_or_insert_with(Box::default).push(crate::contact::OptOut {
                ts: d.i64()?,
                scope: d.sym(crate::contact::OptOutScope::parse)?,
                campaign: d.opt_str()?.map(Into::into),
                keyword: d.str()?.into(),
                to: d.str()?.into(),
                reply: d.str()?.into(),
            });
        }
        let n = if d.at_least(4) { d.len(40)? } else { 0 };
        for _ in 0..n {
            r.journeys.get_or_insert_with(Box::default).push(JourneyInst::decode(d)?);
        }
        match r.journeys.is_some() {
            true => s.flags |= super::IN_JOURNEY,
            false => s.flags &= !super::IN_JOURNEY,
        }
        s.rare = Some(Box::new(r));
        Ok(s)
    }
}
