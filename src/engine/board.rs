//! The journeys board: how many of a running engine's subscribers wait at each journey step
//! now, as its shards publish it (`GET /v1/journeys`, the console's campaigns page). Each shard
//! hands over its whole picture when it changes — the steps of the rules it runs, and the
//! instances at each — and a reader sums them.

use serde::Serialize;
use std::sync::Mutex;

/// One shard's picture: (journey, step) of each step of its rules, and the instances at each.
type Picture = (Vec<(String, String)>, Vec<u64>);

#[derive(Default, Debug)]
pub struct JourneyBoard {
    /// Per shard, its picture.
    shards: Mutex<Vec<Picture>>,
}

/// One journey as the board answers it.
#[derive(Serialize, Debug, PartialEq)]
pub struct JourneyCount {
    pub journey: String,
    /// Instances in progress, all steps.
    pub in_progress: u64,
    pub steps: Vec<StepCount>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct StepCount {
    pub step: String,
    pub in_progress: u64,
}

impl JourneyBoard {
    /// Shard `shard`'s picture now: `labels` by step, `counts` by step (missing ones are none).
    pub fn publish(&self, shard: usize, labels: &[(String, String)], counts: &[u64]) {
        let mut shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        if shards.len() <= shard {
            shards.resize_with(shard + 1, Default::default);
        }
        let (l, c) = &mut shards[shard];
        if l.as_slice() != labels {
            *l = labels.to_vec();
        }
        c.clear();
        c.extend((0..labels.len()).map(|i| counts.get(i).copied().unwrap_or(0)));
    }

    /// The journeys in the order the first shard's rules give them, each with its steps, summed
    /// over the shards (a step a shard's rules no longer have, after a reload, is not shown).
    pub fn view(&self) -> Vec<JourneyCount> {
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<JourneyCount> = Vec::new();
        for (labels, counts) in shards.iter() {
            for ((journey, step), n) in labels.iter().zip(counts) {
                let j = match out.iter().position(|j| j.journey == *journey) {
                    Some(i) => &mut out[i],
                    None => {
                        out.push(JourneyCount { journey: journey.clone(), in_progress: 0, steps: Vec::new() });
                        out.last_mut().expect("just pushed")
                    }
                };
                j.in_progress += n;
                match j.steps.iter_mut().find(|s| s.step == *step) {
                    Some(s) => s.in_progress += n,
                    None => j.steps.push(StepCount { step: step.clone(), in_progress: *n }),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::JourneyBoard;

    #[test]
    fn the_shards_pictures_are_summed_by_journey_and_step() {
        let b = JourneyBoard::default();
        let l = |xs: &[(&str, &str)]| xs.iter().map(|(j, s)| (j.to_string(), s.to_string())).collect::<Vec<_>>();
        b.publish(1, &l(&[("keep", "call"), ("keep", "offer"), ("trip", "away")]), &[2, 0, 5]);
        b.publish(0, &l(&[("keep", "call"), ("keep", "offer"), ("trip", "away")]), &[1, 3]);
        let v = serde_json::to_value(b.view()).expect("json");
        assert_eq!(v[0]["journey"], "keep");
        assert_eq!((v[0]["in_progress"].as_u64(), v[1]["in_progress"].as_u64()), (Some(6), Some(5)));
        assert_eq!(v[0]["steps"][0], serde_json::json!({"step": "call", "in_progress": 3}));
        assert_eq!(v[0]["steps"][1], serde_json::json!({"step": "offer", "in_progress": 3}));
        // Shard 0 reloads to rules without the trip: shard 1 still has instances there.
        b.publish(0, &l(&[("keep", "call")]), &[1]);
        assert_eq!(b.view().len(), 2);
        b.publish(1, &l(&[("keep", "call")]), &[2]);
        let v = b.view();
        assert_eq!((v.len(), v[0].in_progress, v[0].steps.len()), (1, 3, 1));
    }
}
