//! A subscriber's place in a journey (`rules::journey`): which step, since when, when its next
//! time transition is due, and what it kept on the way. Few subscribers are ever in one, so the
//! instances sit in the rare part of the state, boxed.

use crate::codec::{Bad, Dec, Enc};
use crate::time::Millis;

/// One subscriber's instance of one journey.
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyInst {
    /// The step it is in: an index into the rule set's steps (which names the journey).
    pub step: u32,
    /// When the journey started (its expiry counts from here).
    pub started: Millis,
    /// When it entered the step.
    pub since: Millis,
    /// Input position of what entered the step; its time transitions fire after it.
    pub armed_at: u64,
    /// When its next time transition or its expiry is due (the shard's index holds it).
    pub due: Millis,
    /// Values kept on the way (`keep:`), e.g. the reason a subscriber gave for leaving.
    pub kept: Vec<(Box<str>, Box<str>)>,
}

impl JourneyInst {
    pub(super) fn encode(&self, e: &mut Enc) {
        e.u32(self.step);
        e.i64(self.started);
        e.i64(self.since);
        e.u64(self.armed_at);
        e.i64(self.due);
        e.u32(self.kept.len() as u32);
        for (k, v) in &self.kept {
            e.str(k);
            e.str(v);
        }
    }

    pub(super) fn decode(d: &mut Dec) -> Result<JourneyInst, Bad> {
        let (step, started, since, armed_at, due) = (d.u32()?, d.i64()?, d.i64()?, d.u64()?, d.i64()?);
        let n = d.len(8)?;
        let kept = (0..n).map(|_| Ok((d.str()?.into(), d.str()?.into()))).collect::<Result<_, Bad>>()?;
        Ok(JourneyInst { step, started, since, armed_at, due, kept })
    }
}
