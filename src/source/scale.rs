//! Scale-out and the Fluvio transport settings (`[scale]`, `[fluvio]`). Several instances share a province's work by
//! partition: the event topics are partitioned by msisdn (the record key), each instance owns a
//! set of partitions and keeps only the subscribers whose number falls in them, and each gets a
//! share of every channel's capacity. Fluvio has no consumer-group rebalancing, so who owns what
//! is configuration, checked at start (README, "Running several instances").
//!
//! These types are always compiled so that a config means the same with or without the
//! `fluvio` cargo feature; only the client (`source::fluvio`, `sink::fluvio`) needs it.

use crate::state::checkpoint::StreamPos;
use crate::util::Msisdn;
use serde::Deserialize;
use std::time::Duration;

/// `[scale]`: this instance's share of the work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScaleSection {
    /// This instance, 0-based.
    pub instance: u32,
    /// How many instances share the work (1 = this one does everything).
    pub instances: u32,
    /// Partitions of the msisdn hash space: the partition count of the event topics.
    pub partitions: u32,
    /// The partitions this instance owns; empty = every partition `p` with
    /// `p % instances == instance`.
    pub owned: Vec<u32>,
    /// This instance's share of each channel's capacity, 0 < share <= 1; 0 = `1 / instances`.
    pub capacity_share: f64,
}

impl Default for ScaleSection {
    fn default() -> Self {
        ScaleSection { instance: 0, instances: 1, partitions: 1, owned: Vec::new(), capacity_share: 0.0 }
    }
}

/// The partition a subscriber's records go to: Fluvio's key partitioner (SipHash-2-4 with zero
/// keys over the key as Rust hashes a byte slice — its length, then its bytes — modulo the
/// partition count), so tidings and every producer that keys by msisdn agree.
pub fn partition_of(msisdn: Msisdn, partitions: u32) -> u32 {
    use std::hash::{Hash, Hasher};
    // std's SipHasher is deprecated only in favour of DefaultHasher, whose algorithm is not
    // promised; this must stay SipHash-2-4 to match the producers.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    msisdn.full().as_bytes().hash(&mut h);
    (h.finish() % u64::from(partitions.max(1))) as u32
}

impl ScaleSection {
    /// Checks the section; called by `Config::check`.
    pub fn check(&self) -> Result<(), String> {
        if self.instances == 0 || self.instance >= self.instances {
            return Err(format!(
                "scale.instance = {} must be below scale.instances = {} (instances are numbered from 0)",
                self.instance, self.instances
            ));
        }
        if self.partitions == 0 {
            return Err("scale.partitions must be at least 1".into());
        }
        if let Some(p) = self.owned.iter().find(|p| **p >= self.partitions) {
            return Err(format!("scale.owned: partition {p} does not exist (scale.partitions = {})", self.partitions));
        }
        if !(0.0..=1.0).contains(&self.capacity_share) || self.capacity_share.is_nan() {
            return Err(format!(
                "scale.capacity_share = {} must be in (0, 1] (0 = 1 / instances)",
                self.capacity_share
            ));
        }
        if self.instances > 1 && self.owned_partitions().is_empty() {
            return Err(format!(
                "instance {} of {} owns no partition: scale.partitions = {} is fewer than the instances",
                self.instance, self.instances, self.partitions
            ));
        }
        Ok(())
    }

    /// The partitions this instance owns, sorted.
    pub fn owned_partitions(&self) -> Vec<u32> {
        let mut v: Vec<u32> = if self.owned.is_empty() {
            (0..self.partitions).filter(|p| p % self.instances.max(1) == self.instance).collect()
        } else {
            self.owned.clone()
        };
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether this instance shares the work with others.
    pub fn is_shared(&self) -> bool {
        self.instances > 1 || (!self.owned.is_empty() && self.owned_partitions().len() < self.partitions as usize)
    }

    /// A predicate: does this instance own the subscriber? (Always true when not shared.)
    pub fn owner(&self) -> impl Fn(Msisdn) -> bool + Send + Sync + 'static {
        let shared = self.is_shared();
        let partitions = self.partitions;
        let mut owned = vec![false; partitions as usize];
        for p in self.owned_partitions() {
            owned[p as usize] = true;
        }
        move |m| !shared || owned[partition_of(m, partitions) as usize]
    }

    /// This instance's share of capacity.
    pub fn share(&self) -> f64 {
        if self.capacity_share > 0.0 { self.capacity_share } else { 1.0 / f64::from(self.instances.max(1)) }
    }

    /// A channel capacity `n per period` cut to this instance's share, keeping the average
    /// rate exact: `n' = max(1, floor(n * share))` per `period * n' / (n * share)`.
    pub fn divide(&self, rate: (u32, i64)) -> (u32, i64) {
        let share = self.share();
        if share >= 1.0 {
            return rate;
        }
        let (n, per) = rate;
        let target = f64::from(n) * share;
        let n2 = (target.floor() as u32).max(1);
        (n2, (per as f64 * f64::from(n2) / target).round() as i64)
    }
}

/// `[fluvio]`: the cluster, the event topics tidings consumes and the topics it produces to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluvioSection {
    /// The cluster's controller (SC), e.g. `127.0.0.1:9003`.
    pub endpoint: String,
    /// Event topics, each partitioned by msisdn with the msisdn as the record key and
    /// `scale.partitions` partitions; this instance reads its owned partitions of each.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// Where a partition with no entry in `offsets` starts: `beginning` or `end`.
    #[serde(default = "default_start")]
    pub start: String,
    /// Exact start positions (an operator's), overriding `start`; a checkpoint's positions
    /// override both ([`FluvioSection::starts`]).
    #[serde(default)]
    pub offsets: Vec<StartOffset>,
    /// Stop at the end of each partition as it stood at start instead of waiting for more
    /// (replaying a topic; the tests use it). Partitions are then merged by event time.
    #[serde(default)]
    pub until_end: bool,
    /// Topic for actions (contacts to make), keyed by msisdn; empty = none.
    #[serde(default)]
    pub actions_topic: String,
    /// Topic for every decision (sent, suppressed with its reason, deferred); empty = none.
    #[serde(default)]
    pub decisions_topic: String,
    /// Topic for dead letters; empty = none.
    #[serde(default)]
    pub dead_letters_topic: String,
    /// Producer batching: how long a record may wait for its batch to fill.
    #[serde(default = "default_linger", with = "crate::time::duration_serde")]
    pub linger: Duration,
    /// Producer batching: the batch size in bytes.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Producer compression: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
}

/// A partition's start: the offset of the first record to read.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StartOffset {
    pub topic: String,
    pub partition: u32,
    pub offset: i64,
}

fn default_topics() -> Vec<String> {
    vec!["tidings-events".into()]
}
fn default_start() -> String {
    "beginning".into()
}
fn default_linger() -> Duration {
    Duration::from_millis(100)
}
fn default_batch_bytes() -> usize {
    64 * 1024
}
fn default_compression() -> String {
    "gzip".into()
}

/// The producer compressions Fluvio knows.
pub const COMPRESSIONS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

impl FluvioSection {
    pub fn check(&self) -> Result<(), String> {
        if self.endpoint.trim().is_empty() {
            return Err("fluvio.endpoint is empty (the controller's host:port, e.g. 127.0.0.1:9003)".into());
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err("fluvio.topics needs at least one topic name".into());
        }
        if !matches!(self.start.as_str(), "beginning" | "end") {
            return Err(format!("fluvio.start = `{}`: one of beginning, end", self.start));
        }
        if let Some(o) = self.offsets.iter().find(|o| o.offset < 0 || !self.topics.contains(&o.topic)) {
            return Err(format!(
                "fluvio.offsets: {}/{} at {} is not a non-negative offset of one of fluvio.topics",
                o.topic, o.partition, o.offset
            ));
        }
        if !COMPRESSIONS.contains(&self.compression.as_str()) {
            return Err(format!("fluvio.compression = `{}`: one of {}", self.compression, COMPRESSIONS.join(", ")));
        }
        if self.batch_bytes == 0 {
            return Err("fluvio.batch_bytes must be at least 1".into());
        }
        Ok(())
    }

    /// Where `topic`/`partition` starts: the given offset, else `None` for `start`.
    pub fn start_of(&self, topic: &str, partition: u32) -> Option<i64> {
        self.offsets.iter().find(|o| o.topic == topic && o.partition == partition).map(|o| o.offset)
    }

    /// Where each `owned` partition of every topic starts: at its position in `checkpoint` (the
    /// truth: it wins over `offsets` and `start`), else as configured. A checkpoint stream this
    /// source does not read (another topic, a partition this instance no longer owns, a file) is
    /// refused: its events are in the state, and reading that partition from elsewhere (or
    /// leaving it to another instance) would count them twice or lose them.
    pub fn starts(&self, owned: &[u32], checkpoint: &[StreamPos]) -> Result<Vec<PartitionStart>, String> {
        let mut out = Vec::new();
        for topic in &self.topics {
            for &partition in owned {
                let stream = fluvio_stream(topic, partition);
                let saved = match checkpoint.iter().find(|p| p.stream == stream) {
                    Some(p) => Some(i64::try_from(p.offset).map_err(|_| {
                        format!("the checkpoint's offset {} of {stream} is not a Fluvio offset", p.offset)
                    })?),
                    None => None,
                };
                out.push(PartitionStart {
                    offset: saved.or_else(|| self.start_of(topic, partition)),
                    from_checkpoint: saved.is_some(),
                    topic: topic.clone(),
                    partition,
                    stream,
                });
            }
        }
        let gone: Vec<String> = checkpoint
            .iter()
            .filter(|p| !out.iter().any(|s| s.stream == p.stream))
            .map(|p| format!("{} (at {})", p.stream, p.offset))
            .collect();
        if !gone.is_empty() {
            return Err(format!(
                "the checkpoint was taken reading {}, which this instance does not read (it reads partitions {owned:?} of {:?}): \
                 give it the topics and [scale] it had, or move the checkpoint directory away to start over",
                gone.join(", "),
                self.topics
            ));
        }
        Ok(out)
    }
}

/// The stream name of a Fluvio partition in checkpoints, its offset the next record's.
pub fn fluvio_stream(topic: &str, partition: u32) -> String {
    format!("fluvio:{topic}/{partition}")
}

/// Where one partition starts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStart {
    pub topic: String,
    pub partition: u32,
    /// Its stream name in checkpoints ([`fluvio_stream`]).
    pub stream: String,
    /// The offset of the first record to read; `None`: `fluvio.start`.
    pub offset: Option<i64>,
    /// The offset is the checkpoint's (not `[[fluvio.offsets]]`).
    pub from_checkpoint: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(instance: u32, instances: u32, partitions: u32) -> ScaleSection {
        ScaleSection { instance, instances, partitions, ..ScaleSection::default() }
    }

    #[test]
    fn partitions_are_shared_out_and_every_subscriber_has_one_owner() {
        let a = scale(0, 2, 4);
        let b = scale(1, 2, 4);
        assert_eq!((a.owned_partitions(), b.owned_partitions()), (vec![0, 2], vec![1, 3]));
        let (oa, ob) = (a.owner(), b.owner());
        let mut per_partition = [0; 4];
        for n in 0..4000u64 {
            let m = Msisdn::parse(&format!("138{:08}", n * 7919)).unwrap();
            assert!(oa(m) != ob(m), "exactly one owner");
            per_partition[partition_of(m, 4) as usize] += 1;
        }
        assert!(per_partition.iter().all(|c| *c > 800), "the hash spreads numbers: {per_partition:?}");
        assert!(scale(0, 1, 4).owner()(Msisdn::parse("13800138000").unwrap()));
    }

    #[test]
    fn partition_is_siphash_2_4_of_the_key_as_fluvio_computes_it() {
        // SipHash-2-4 with zero keys over the 8-byte little-endian length and then the bytes,
        // computed independently (a Python SipHash-2-4 checked against the reference vector).
        for (m, p4, p16) in [("13800138000", 2, 6), ("13912345678", 3, 15), ("0010086", 1, 5), ("15800000001", 3, 15)] {
            let m = Msisdn::parse(m).unwrap();
            assert_eq!((partition_of(m, 4), partition_of(m, 16)), (p4, p16), "{}", m.full());
        }
    }

    #[test]
    fn capacity_is_divided_with_the_average_rate_kept() {
        assert_eq!(scale(0, 2, 4).divide((200, 1000)), (100, 1000));
        assert_eq!(scale(0, 1, 4).divide((200, 1000)), (200, 1000));
        // 200/s over 3: 66 per 990 ms = 66.67/s.
        assert_eq!(scale(1, 3, 3).divide((200, 1000)), (66, 990));
        // 1/min over 4: one per 4 minutes.
        assert_eq!(scale(0, 4, 4).divide((1, 60_000)), (1, 240_000));
        let s = ScaleSection { capacity_share: 0.25, ..scale(0, 2, 4) };
        assert_eq!(s.divide((200, 1000)), (50, 1000));
    }

    #[test]
    fn bad_scale_settings_are_refused() {
        assert!(scale(2, 2, 4).check().is_err());
        assert!(scale(0, 0, 4).check().is_err());
        assert!(scale(3, 4, 2).check().unwrap_err().contains("owns no partition"));
        assert!(ScaleSection { owned: vec![9], ..scale(0, 2, 4) }.check().is_err());
        assert!(ScaleSection { capacity_share: 1.5, ..scale(0, 2, 4) }.check().is_err());
        assert!(scale(1, 2, 4).check().is_ok());
    }

    fn fluvio(text: &str) -> FluvioSection {
        toml::from_str(&format!("endpoint = \"127.0.0.1:9003\"\ntopics = [\"ev\", \"crm\"]\n{text}")).unwrap()
    }

    fn pos(stream: &str, offset: u64) -> StreamPos {
        StreamPos { stream: stream.into(), offset, records: offset }
    }

    #[test]
    fn a_partition_starts_at_the_checkpoint_else_at_its_given_offset_else_at_start() {
        let f = fluvio(
            "start = \"end\"\n[[offsets]]\ntopic = \"ev\"\npartition = 0\noffset = 7\n[[offsets]]\ntopic = \"ev\"\npartition = 2\noffset = 9\n",
        );
        assert_eq!(fluvio_stream("ev", 2), "fluvio:ev/2");
        let starts = f.starts(&[0, 2], &[pos("fluvio:ev/2", 1234), pos("fluvio:crm/0", 5)]).unwrap();
        let got: Vec<(&str, u32, Option<i64>, bool, &str)> = starts
            .iter()
            .map(|s| (s.topic.as_str(), s.partition, s.offset, s.from_checkpoint, s.stream.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ev", 0, Some(7), false, "fluvio:ev/0"),   // not in the checkpoint: [[offsets]]
                ("ev", 2, Some(1234), true, "fluvio:ev/2"), // the checkpoint wins over [[offsets]]
                ("crm", 0, Some(5), true, "fluvio:crm/0"),  // the checkpoint wins over start
                ("crm", 2, None, false, "fluvio:crm/2"),    // neither: `start`
            ]
        );
        // No checkpoint: as configured.
        let fresh = f.starts(&[0, 2], &[]).unwrap();
        assert_eq!(fresh.iter().map(|s| s.offset).collect::<Vec<_>>(), vec![Some(7), Some(9), None, None]);
        assert!(fresh.iter().all(|s| !s.from_checkpoint));
    }

    #[test]
    fn a_checkpoint_of_streams_this_source_does_not_read_is_refused() {
        let f = fluvio("");
        // A partition this instance no longer owns, another topic, a file run's checkpoint.
        for foreign in ["fluvio:ev/1", "fluvio:other/0", "file:/data/events.jsonl", "generator"] {
            let err = f.starts(&[0, 2], &[pos("fluvio:ev/0", 3), pos(foreign, 10)]).unwrap_err();
            assert!(err.contains(foreign) && err.contains("does not read"), "{foreign}: {err}");
        }
        let err = f.starts(&[0], &[pos("fluvio:ev/0", u64::MAX)]).unwrap_err();
        assert!(err.contains("not a Fluvio offset"), "{err}");
    }
}
