//! Scale-out through the real binary: instances that each own half of the partitions, reading
//! the same event file, together decide exactly what one instance deciding everything decides
//! (actions and every decision), and each decides only for its own subscribers.

use std::path::{Path, PathBuf};
use std::process::Command;
use tidings::config::Config;
use tidings::source::scale::partition_of;
use tidings::util::Msisdn;

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tidings-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tidings(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run tidings");
    assert!(out.status.success(), "tidings {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A config reading `data/events.jsonl` into `out`, with `extra` appended.
fn config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[rules]\npaths = [{rules:?}]\n[data]\ndir = {data:?}\n[source]\nkind = \"files\"\nfiles = [{events:?}]\n\
         [output]\ndir = {out:?}\nstdout = false\n{extra}\n",
        rules = concat!(env!("CARGO_MANIFEST_DIR"), "/rules"),
        data = dir.join("data").display().to_string(),
        events = dir.join("data/events.jsonl").display().to_string(),
        out = dir.join(name).display().to_string(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect();
    v.sort();
    v
}

pub fn msisdn_of(line: &str) -> Msisdn {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    Msisdn::parse(v["msisdn"].as_str().unwrap()).unwrap()
}

#[test]
fn two_instances_owning_half_the_partitions_decide_what_one_decides() {
    let dir = tmp("halves");
    let data = dir.join("data");
    tidings(&["gen", "--out", data.to_str().unwrap(), "--subscribers", "2000", "--events", "40000", "--days", "8"]);
    let whole = config(&dir, "whole", "");
    tidings(&["run", "--config", whole.to_str().unwrap()]);
    let mut union = (Vec::new(), Vec::new());
    for i in 0..2u32 {
        let name = format!("part{i}");
        let cfg = config(&dir, &name, &format!("[scale]\ninstance = {i}\ninstances = 2\npartitions = 4\n"));
        let out = tidings(&["run", "--config", cfg.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("instance {i} of 2")), "{stderr}");
        let actions = sorted_lines(&dir.join(&name).join("actions.jsonl"));
        assert!(actions.len() > 100, "instance {i} decided {} actions", actions.len());
        for a in &actions {
            assert_eq!(partition_of(msisdn_of(a), 4) % 2, i, "instance {i} contacted a subscriber it does not own");
        }
        union.0.extend(actions);
        union.1.extend(sorted_lines(&dir.join(&name).join("decisions.jsonl")));
    }
    union.0.sort();
    union.1.sort();
    let one = (sorted_lines(&dir.join("whole/actions.jsonl")), sorted_lines(&dir.join("whole/decisions.jsonl")));
    assert_eq!(union.0.len(), one.0.len(), "as many actions from two instances as from one");
    assert!(union.0 == one.0, "the two instances' actions are the single instance's");
    assert!(union.1 == one.1, "and so is every decision, suppressions included");
}

#[test]
fn each_instance_gets_its_share_of_channel_capacity() {
    let dir = tmp("capacity");
    let cfg = |extra: &str| {
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            format!(
                "[policy.channels.sms]\ncapacity = \"200/s\"\n[policy.channels.call]\ncapacity = \"30/min\"\n{extra}"
            ),
        )
        .unwrap();
        Config::load(&p)
    };
    let sms = tidings::contact::Channel::Sms as usize;
    let call = tidings::contact::Channel::Call as usize;
    let alone = cfg("").unwrap();
    assert_eq!((alone.capacity[sms], alone.capacity[call]), (Some((200, 1000)), Some((30, 60_000))));
    let third = cfg("[scale]\ninstance = 2\ninstances = 3\npartitions = 6\n").unwrap();
    assert_eq!((third.capacity[sms], third.capacity[call]), (Some((66, 990)), Some((10, 60_000))));
    let share = cfg("[scale]\ninstance = 0\ninstances = 2\npartitions = 4\ncapacity_share = 0.75\n").unwrap();
    assert_eq!(share.capacity[sms], Some((150, 1000)));
    let bad = cfg("[scale]\ninstance = 2\ninstances = 2\npartitions = 4\n").unwrap_err().to_string();
    assert!(bad.contains("scale.instance = 2 must be below scale.instances = 2"), "{bad}");
}

/// An IVR request reaching an instance that does not own the caller is answered at once with
/// 421 and the caller's partition (the IVR asks the owner), never left to time out; a caller
/// the instance owns gets the usual answer.
#[test]
fn an_ivr_request_for_another_instances_caller_is_turned_away_with_its_partition() {
    use crate::delivery::{Dir, http_get, port as free_port, start_live};
    let dir = Dir::new("scale-ivr");
    let port = free_port();
    let cfg = dir.0.join("tidings.toml");
    std::fs::write(
        &cfg,
        format!(
            "[source]\nkind = \"stdin\"\n[output]\ndir = {out:?}\nstdout = false\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"adm\"\nivr_token = \"ivr\"\nivr_wait = \"5s\"\n\
             [scale]\ninstance = 0\ninstances = 2\npartitions = 4\n",
            out = dir.0.join("out").display().to_string(),
        ),
    )
    .unwrap();
    let (_engine, _stdin) = start_live(&cfg, port);
    let number = |owned: bool| {
        (13_800_000_000u64..)
            .map(|n| n.to_string())
            .find(|n| partition_of(Msisdn::parse(n).unwrap(), 4).is_multiple_of(2) == owned)
            .unwrap()
    };
    let (mine, theirs) = (number(true), number(false));
    let (status, body) = http_get(port, &format!("/v1/ivr/{theirs}?session=s1"), Some("ivr"));
    assert_eq!(status, 421, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["partition"], partition_of(Msisdn::parse(&theirs).unwrap(), 4), "{v}");
    assert!(!body.contains(&theirs), "no full number in the answer: {body}");
    let (status, body) = http_get(port, &format!("/v1/ivr/{mine}?session=s2"), Some("ivr"));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["menu"].is_array() && v.get("degraded").is_none(), "answered by the engine, not timed out: {v}");
}
