//! What the cluster says about the event topics before anything is read: that each exists with
//! exactly `[scale] partitions` partitions (the msisdn → partition mapping that decides which
//! instance owns a subscriber depends on that count), and where each partition begins and ends
//! right now.
//!
//! The ends come from the partition's leader (the SPU's `FetchOffsets`, the request the client
//! itself makes when it opens a stream): a replay (`until_end`) reads each partition up to the
//! end it had at start, and knows it is done only when it has that record, rather than when
//! the client's stream stops (which can be one batch early).

use fluvio::Fluvio;
use fluvio::dataplane::record::ReplicaKey;
use fluvio::metadata::partition::PartitionSpec;
use fluvio::metadata::spu::SpuSpec;
use fluvio::metadata::topic::TopicSpec;
use fluvio_socket::{ClientConfig, MultiplexerSocket, VersionedSerialSocket};
use fluvio_spu_schema::errors::ErrorCode;
use fluvio_spu_schema::server::fetch_offset::FetchOffsetsRequest;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// Where one partition's records are: offsets `first..end` (`end` is the next offset to be
/// written, the SPU's last stable offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub first: i64,
    pub end: i64,
}

/// Checks that every topic in `topics` exists with exactly `partitions` partitions; the error
/// names what is wrong and what was expected.
pub async fn check_topics(fluvio: &Fluvio, endpoint: &str, topics: &[String], partitions: u32) -> Result<(), String> {
    let admin = fluvio.admin().await;
    let listed = admin
        .list::<TopicSpec, String>(Vec::new())
        .await
        .map_err(|e| format!("fluvio: listing the topics of the cluster at {endpoint}: {e}"))?;
    let counts: BTreeMap<&str, u32> =
        listed.iter().map(|t| (t.name.as_str(), t.spec.replicas().partitions())).collect();
    for topic in topics {
        match counts.get(topic.as_str()) {
            None => return Err(missing_topic(topic, endpoint, counts.keys().copied())),
            Some(&n) if n != partitions => {
                return Err(format!(
                    "fluvio: topic {topic:?} has {n} partition{}, but [scale] partitions = {partitions}: every event \
                     topic must have exactly [scale] partitions partitions (which instance owns a subscriber \
                     depends on that count); create the topic with {partitions} or set [scale] partitions = {n}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn missing_topic<'a>(topic: &str, endpoint: &str, existing: impl Iterator<Item = &'a str>) -> String {
    let existing: Vec<&str> = existing.filter(|t| !t.starts_with("consumer-offset")).collect();
    let shown = existing.iter().take(10).map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    let more = existing.len().saturating_sub(10);
    format!(
        "fluvio: topic {topic:?} does not exist on the cluster at {endpoint} ({}{})",
        if existing.is_empty() { "it has no topics".to_string() } else { format!("its topics: {shown}") },
        if more > 0 { format!(" and {more} more") } else { String::new() }
    )
}

/// Where each of `parts` (topic, partition) begins and ends now, asked of each partition's
/// leader. A partition the cluster does not list, or whose leader cannot be reached or answers
/// with an error, is an error.
pub async fn bounds(fluvio: &Fluvio, parts: &[(String, u32)]) -> Result<Vec<Bounds>, String> {
    let admin = fluvio.admin().await;
    let listed = admin
        .list::<PartitionSpec, String>(Vec::new())
        .await
        .map_err(|e| format!("fluvio: listing the partitions of the cluster: {e}"))?;
    let spus = admin.list::<SpuSpec, String>(Vec::new()).await.map_err(|e| format!("fluvio: listing the SPUs: {e}"))?;
    let leaders: BTreeMap<&str, i32> = listed.iter().map(|p| (p.name.as_str(), p.spec.leader)).collect();
    let mut sockets: BTreeMap<i32, VersionedSerialSocket> = BTreeMap::new();
    let mut out = Vec::with_capacity(parts.len());
    for (topic, p) in parts {
        let p = *p;
        let key = ReplicaKey::new(topic.to_string(), p);
        let Some(&leader) = leaders.get(key.to_string().as_str()) else {
            return Err(format!("fluvio: partition {p} of topic {topic:?} does not exist on the cluster"));
        };
        let socket = match sockets.entry(leader) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let Some(spu) = spus.iter().find(|s| s.spec.id == leader) else {
                    return Err(format!(
                        "fluvio: {topic}/{p}: its leader, SPU {leader}, is not registered with the cluster"
                    ));
                };
                let addr = spu.spec.public_endpoint.addr();
                let socket = connect(&addr)
                    .await
                    .map_err(|e| format!("fluvio: {topic}/{p}: reaching its leader, SPU {leader} at {addr}: {e}"))?;
                v.insert(socket)
            }
        };
        let response = socket
            .send_receive(FetchOffsetsRequest::new(topic.to_string(), p))
            .await
            .map_err(|e| format!("fluvio: {topic}/{p}: asking its leader, SPU {leader}, for its offsets: {e}"))?;
        let Some(offsets) = response.find_partition(&key) else {
            return Err(format!("fluvio: {topic}/{p}: its leader, SPU {leader}, did not report its offsets"));
        };
        if offsets.error_code != ErrorCode::None {
            return Err(format!("fluvio: {topic}/{p}: its leader, SPU {leader}, answered {:?}", offsets.error_code));
        }
        out.push(Bounds { first: offsets.start_offset, end: offsets.last_stable_offset });
    }
    Ok(out)
}

async fn connect(addr: &str) -> Result<VersionedSerialSocket, String> {
    let (socket, config, versions) =
        ClientConfig::with_addr(addr.to_string()).connect().await.map_err(|e| e.to_string())?.split();
    Ok(VersionedSerialSocket::new(MultiplexerSocket::shared(socket), config, versions))
}
