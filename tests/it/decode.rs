//! Every event kind decodes; every kind of bad line is a dead letter with its reason, and the
//! good lines around it are all processed.

use super::support::*;
use tidings::event::DeadReason;

const ALL_KINDS: &str = r#"
- rule: any_event
  on: [usage, topup, ivr, location, crm, profile]
  condition: "true"
  action: { channel: sms, template: "{event.kind}" }
"#;

#[test]
fn each_event_kind_is_decoded_and_reaches_rules() {
    let lines = vec![
        ev(
            "usage",
            "08:00:00",
            r#""service":"voice","direction":"mo","scope":"long_distance","peer":"13900001111","duration_s":60,"charge_fen":30,"balance_fen":1000,"cell":"home""#,
        ),
        ev("topup", "08:01:00", r#""amount_fen":5000,"balance_fen":6000,"channel":"store","store":"S002""#),
        ev("ivr", "08:02:00", r#""session":"s1","step":"menu","node":"1-3-2","hotline":"10086""#),
        ev("location", "08:03:00", r#""cell":"station1","trigger":"attach""#),
        ev("crm", "08:04:00", r#""event":"store_visit","attrs":{"store":"S002"}"#),
        ev("profile", "08:05:00", r#""set":{"tier":"valuable","services":["weather"]}"#),
    ];
    let r = run(ALL_KINDS, &[SUB], &lines);
    assert!(r.dead.is_empty(), "{:?}", r.dead);
    let texts: Vec<_> = r.decisions.iter().map(|d| d.text.clone().unwrap_or_default()).collect();
    assert_eq!(texts, ["usage", "topup", "ivr", "location", "crm", "profile"]);
}

#[test]
fn bad_lines_become_dead_letters_and_nothing_around_them_is_lost() {
    let huge = format!(r#"{{"kind":"usage","pad":"{}"}}"#, "x".repeat(200_000));
    let mut garbage = vec![0xff, 0xfe, 0x00, 0x9c, b'{'];
    garbage.extend_from_slice(&[0xc3, 0x28]);
    let good = |t: &str| ev("crm", t, r#""event":"store_visit""#);
    let lines: Vec<Vec<u8>> = vec![
        good("09:00:00").into_bytes(),
        b"{\"kind\":\"usage\",\"ts\":".to_vec(),
        good("09:01:00").into_bytes(),
        br#"{"kind":"topup","ts":"2026-11-24T09:02:00+08:00","msisdn":"13800138000","channel":"card"}"#.to_vec(),
        good("09:03:00").into_bytes(),
        br#"{"kind":"crm","ts":"2026-11-24T09:04:00+08:00","msisdn":"138-0013-8000","event":"x"}"#.to_vec(),
        good("09:05:00").into_bytes(),
        huge.into_bytes(),
        good("09:06:00").into_bytes(),
        garbage,
        good("09:07:00").into_bytes(),
        br#"{"kind":"weather","ts":"2026-11-24T09:08:00+08:00","msisdn":"13800138000"}"#.to_vec(),
        br#"{"kind":"usage","ts":"2026-11-24T09:08:00+08:00","msisdn":"13800138000","service":"fax","direction":"mo","scope":"local"}"#.to_vec(),
        br#"{"kind":"crm","ts":"yesterday","msisdn":"13800138000","event":"x"}"#.to_vec(),
        good("09:09:00").into_bytes(),
    ];
    // Through the real line reader, as a file would be read.
    let mut file = Vec::new();
    for l in &lines {
        file.extend_from_slice(l);
        file.push(b'\n');
    }
    let items: Vec<_> =
        tidings::source::Lines::new(&file[..], "events.jsonl", tidings::event::Decoder::default()).collect();
    let dead: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    let reasons: Vec<DeadReason> = dead.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [
            DeadReason::BadJson,
            DeadReason::MissingField,
            DeadReason::BadMsisdn,
            DeadReason::TooLong,
            DeadReason::BadUtf8,
            DeadReason::UnknownKind,
            DeadReason::BadField,
            DeadReason::BadTs
        ]
    );
    let lines_of: Vec<u64> = dead.iter().map(|d| d.line).collect();
    assert_eq!(lines_of, [2, 4, 6, 8, 10, 12, 13, 14]);
    assert!(dead.iter().all(|d| d.source == "events.jsonl"));
    let too_long = dead.iter().find(|d| d.reason == DeadReason::TooLong).unwrap();
    assert!(too_long.truncated && too_long.raw.len() <= 1024, "raw text is kept but truncated");
    assert!(dead[2].raw.contains("138-0013-8000"), "the raw record is kept");
    let good: Vec<_> = items.iter().filter_map(|i| i.as_ref().ok()).collect();
    assert_eq!(good.len(), 7, "every good line survives");

    // And through the engine: dead letters are counted, the good lines decide.
    let text_lines: Vec<String> = lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    let r = run(ALL_KINDS, &[SUB], &text_lines);
    assert_eq!(r.decisions.len(), 7);
    assert_eq!(r.summary.dead_total(), 8);
}

#[test]
fn dead_letters_never_carry_a_panic_for_arbitrary_bytes() {
    let d = tidings::event::Decoder::default();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..2000usize {
        let mut bytes = Vec::with_capacity(len % 300);
        for _ in 0..len % 300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let table = b"{}[]\":,0123456789abcdefkindtsmsisdnusage\\ \xff\xe4";
            bytes.push(table[(seed % table.len() as u64) as usize]);
        }
        let _ = d.decode(&bytes, "fuzz", len as u64);
    }
}

#[test]
fn parallel_decoding_yields_exactly_the_sequential_stream() {
    let mut file = Vec::new();
    for i in 0..5000u32 {
        let line = match i % 7 {
            0 => format!(
                "{{\"kind\":\"usage\",\"ts\":\"2026-11-24T08:{:02}:00+08:00\",\"msisdn\":\"138{:08}\"}}",
                i % 60,
                i
            ),
            3 => "{broken".to_string(),
            _ => format!(
                "{{\"kind\":\"crm\",\"ts\":\"2026-11-24T08:{:02}:00+08:00\",\"msisdn\":\"138{:08}\",\"event\":\"x{i}\"}}",
                i % 60,
                i
            ),
        };
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    let show =
        |it: &mut dyn Iterator<Item = Result<tidings::event::Event, tidings::event::DeadLetter>>| -> Vec<String> {
            it.map(|r| match r {
                Ok(e) => format!("{} {} {}", e.id, e.ts, e.msisdn.full()),
                Err(d) => format!("dead {} {} {}", d.line, d.reason.as_str(), d.source),
            })
            .collect()
        };
    let seq = show(&mut tidings::source::Lines::new(&file[..], "f", tidings::event::Decoder::default()));
    for workers in [1, 3] {
        let par = show(&mut tidings::source::ParallelDecode::new(
            std::io::Cursor::new(file.clone()),
            "f",
            tidings::event::Decoder::default(),
            workers,
        ));
        assert_eq!(par, seq, "{workers} workers");
    }
    assert_eq!(seq.len(), 5000);
}

/// The `too_long` detail gave the limit, not the line's size: every reader (a file read in
/// order, the parallel decoder, a live stream) now says how long the line really was, though it
/// keeps only the first bytes of it.
#[test]
fn a_too_long_line_says_its_real_size_through_every_reader() {
    let good = ev("usage", "09:00:00", r#""service":"sms","direction":"mo","scope":"local","count":1"#);
    let mut input = Vec::new();
    input.extend_from_slice(good.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(&vec![b'x'; 70_000]);
    input.push(b'\n');
    input.extend_from_slice(&vec![b'y'; 200_000]);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(good.as_bytes());
    input.push(b'\n');
    let want =
        ["line of 70000 bytes is over the 65536-byte limit", "line of 200000 bytes is over the 65536-byte limit"];
    let details = |items: Vec<Result<tidings::event::Event, tidings::event::DeadLetter>>| {
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 2, "the good lines around them survive");
        items.into_iter().filter_map(|i| i.err()).map(|d| (d.reason, d.detail)).collect::<Vec<_>>()
    };
    let want: Vec<_> = want.iter().map(|w| (DeadReason::TooLong, w.to_string())).collect();
    let decoder = tidings::event::Decoder::default();
    let lines = tidings::source::Lines::new(&input[..], "events.jsonl", decoder.clone()).collect();
    assert_eq!(details(lines), want, "a file read in order");
    let parallel =
        tidings::source::ParallelDecode::new(std::io::Cursor::new(input.clone()), "events.jsonl", decoder.clone(), 2);
    assert_eq!(details(parallel.collect()), want, "the parallel decoder");
    let (live, feed) = tidings::source::Live::new(std::io::Cursor::new(input.clone()), "stdin", decoder);
    drop(feed);
    let items = live
        .filter_map(|i| match i {
            tidings::engine::Input::Item(r) | tidings::engine::Input::Urgent(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(details(items), want, "a live stream");
}
