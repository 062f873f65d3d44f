//! Tests of the subscriber state: windows, zones and recent cells.

use super::*;
use crate::time::{DAY, HOUR};

#[test]
fn windows_hold_exactly_the_events_of_their_buckets_in_reach_whatever_the_order() {
    // Four windows of different widths fed a pseudo-random stream (some events late, some
    // older than any window): every window's sum equals the brute-force sum of the events in
    // the buckets it reaches, at each step; dead buckets leave the list.
    let defs = [(HOUR, 24 * HOUR), (12 * HOUR, 30 * DAY), (DAY, 60 * DAY), (60_000, HOUR)];
    let mut s = SubState::default();
    let mut seen: Vec<(u32, i64, i64)> = Vec::new();
    let (mut x, mut newest) = (7u64, 0i64);
    for step in 0..3_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let slot = (x >> 60) as u32 % 4;
        let jump = ((x >> 20) % (3 * HOUR as u64)) as i64;
        let ts = match (x >> 8) % 10 {
            0 => newest - ((x >> 30) % (90 * DAY as u64)) as i64,
            _ => {
                newest += jump;
                newest
            }
        };
        let amount = ((x >> 40) % 100) as i64 - 20;
        let (bucket, window) = defs[slot as usize];
        s.agg_add(slot, ts, amount, bucket, window);
        seen.push((slot, ts, amount));
        for (k, &(bucket, window)) in defs.iter().enumerate() {
            let k = k as u32;
            let reach = |t: i64| {
                let idx = t.div_euclid(bucket);
                (idx + 1) * bucket > newest - window && idx * bucket <= newest
            };
            let want: i64 = seen.iter().filter(|e| e.0 == k && reach(e.1)).map(|e| e.2).sum();
            assert_eq!(s.agg_value_window(k, newest, bucket, window), want, "slot {k} at step {step}");
        }
    }
    assert!(s.agg_buckets() < 200, "dead buckets were dropped ({} kept)", s.agg_buckets());
}

#[test]
fn windows_of_several_slots_share_one_vector_and_slide() {
    let mut s = SubState::default();
    let (b1, w1) = (HOUR, 2 * HOUR);
    let (b2, w2) = (DAY, 30 * DAY);
    for h in 0..10 {
        s.agg_add(1, h * HOUR, 1, b1, w1);
        s.agg_add(0, h * HOUR, 5, b2, w2);
    }
    // The 2-hour window keeps only the buckets that can still count; the bucket at the far
    // edge (7h..8h) counts whole, as documented (exact to within one bucket).
    assert_eq!(s.agg_value_window(1, 9 * HOUR, b1, w1), 3);
    assert_eq!(s.agg_value_window(0, 9 * HOUR, b2, w2), 50);
    assert!(s.agg_buckets() <= 4, "{} buckets kept", s.agg_buckets());
    // A late event lands in its own bucket, in order.
    s.agg_add(1, 8 * HOUR + 1, 1, b1, w1);
    assert_eq!(s.agg_value_window(1, 9 * HOUR, b1, w1), 4);
    assert_eq!(s.agg_value_window(2, 9 * HOUR, b1, w1), 0, "an untouched slot is empty");
}

#[test]
fn compact_zones_keep_shared_tags_entry_time_and_recent_cells_stay_distinct() {
    let mut rd = RefData::default();
    let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    rd.add_cell("a", "", 0.0, 0.0, &tags(&["city", "station"]));
    rd.add_cell("b", "", 0.0, 0.0, &tags(&["city"]));
    for i in 0..20 {
        rd.add_cell(&format!("x{i}"), "", 0.0, 0.0, &[]);
    }
    let (city, station) = (rd.tag("city").unwrap(), rd.tag("station").unwrap());
    let mut s = SubState::default();
    s.begin(0, None);
    s.move_to(Some("a"), 0, &rd);
    assert!(s.entered(&[station], &rd));
    s.begin(HOUR, None);
    s.move_to(Some("b"), HOUR, &rd);
    assert!(s.left(&[station], &rd) && !s.entered(&[city], &rd));
    assert_eq!((s.dwell(&[city], 2 * HOUR, &rd), s.dwell(&[station], 2 * HOUR, &rd)), (2 * HOUR, 0));
    s.move_to(Some("unknown-1"), 3 * HOUR, &rd);
    assert_eq!((s.cell_id_str(&rd), s.prev_cell()), (Some("unknown-1"), rd.cell("b")));
    s.move_to(Some("unknown-2"), 4 * HOUR, &rd);
    assert_eq!((s.cell_id_str(&rd), s.cell_since(), s.prev_cell()), (Some("unknown-2"), Some(4 * HOUR), None));
    assert!(s.visited(&[station], DAY, 4 * HOUR, &rd) && !s.visited(&[station], HOUR, 4 * HOUR, &rd));
    // Only the last 16 distinct cells are remembered: "a" drops out after 16 others.
    for i in 0..14 {
        s.move_to(Some(&format!("x{i}")), 5 * HOUR, &rd);
    }
    s.move_to(Some("b"), 5 * HOUR, &rd);
    assert!(s.visited(&[station], DAY, 5 * HOUR, &rd), "16 distinct cells: a is still there");
    s.move_to(Some("x14"), 5 * HOUR, &rd);
    assert!(!s.visited(&[station], DAY, 5 * HOUR, &rd));
    assert!(s.visited(&[city], DAY, 5 * HOUR, &rd), "b, seen again, moved up");
}

#[test]
fn recent_cells_and_zone_times_follow_the_plain_rules_over_a_long_walk() {
    // A pseudo-random walk over 40 cells with overlapping tags (some cells with more tags than
    // the stack holds), checked at each step against the rules written plainly: the distinct
    // cells before the newest, oldest first, at most RECENT_CELLS in all with the newest; each
    // tag of the current cell entered when the walk last came into cells carrying it.
    let mut rd = RefData::default();
    let names: Vec<String> = (0..12).map(|t| format!("t{t}")).collect();
    for c in 0..40usize {
        let tags: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|(t, _)| (c * 7 + t * 3) % 5 < 2 || c % 13 == 0)
            .map(|(_, n)| n.clone())
            .collect();
        rd.add_cell(&format!("c{c}"), "", 0.0, 0.0, &tags);
    }
    let mut s = SubState::default();
    let mut older: Vec<(CellId, Millis)> = Vec::new();
    let mut newest: Option<(CellId, Millis)> = None;
    let mut entered: std::collections::HashMap<TagId, Millis> = Default::default();
    let mut x = 11u64;
    for step in 0..5_000i64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let c = (x >> 33) as usize % if step % 500 < 250 { 6 } else { 40 };
        let now = step * 60_000;
        let id = rd.cell(&format!("c{c}")).unwrap();
        s.begin(now, None);
        s.move_to(Some(&format!("c{c}")), now, &rd);
        if let Some((last, seen)) = newest.filter(|(last, _)| *last != id) {
            older.retain(|(o, _)| *o != id);
            if older.len() + 1 == RECENT_CELLS {
                older.remove(0);
            }
            older.push((last, seen));
        }
        newest = Some((id, now));
        let tags = &rd.cells[id as usize].tags;
        entered.retain(|t, _| tags.contains(t));
        for t in tags {
            entered.entry(*t).or_insert(now);
        }
        assert_eq!(s.older_cells.as_slice(), older.as_slice(), "step {step}");
        for (j, t) in tags.iter().enumerate() {
            assert_eq!(s.zone_entered(j), entered[t], "step {step}, tag {t}");
        }
    }
}
