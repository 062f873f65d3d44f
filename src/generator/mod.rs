//! Synthetic subscribers, cells, calendar, stores and event streams, reproducible from a seed.
//!
//! Why it exists: real CDRs, location updates and CRM records cannot leave an operator, yet the
//! rule pack, the demo run and the load tests need traffic that looks like an operator's: mostly
//! dull location updates and usage records following the day's rhythm, with the stories the
//! rules look for (a traveller at a station with a low balance, a fan staying through a concert,
//! a caller looping in the IVR) buried in it at realistic rates.
//!
//! How it models traffic:
//! - Every subscriber attribute is a pure function of `(seed, index)`, so the event side can look
//!   up anyone's profile without holding a million profiles. Only a prepaid balance and a few
//!   flag bits per subscriber are kept (5 bytes each), because a balance that jumps around between
//!   records would make the balance rules fire on noise.
//! - A background clock walks time forward: its ticks are quantiles of a diurnal density (quiet
//!   01:00-06:00, peaks mid-morning and evening), and each tick is one ordinary event for a
//!   subscriber drawn with a skew (a few heavy users, a long tail).
//! - Episodes (multi-event stories) are started by per-kind clocks in their plausible time of
//!   day and push their follow-ups into a min-heap, merged with the background by time. Every
//!   line an episode schedules is paid for by skipping one background tick, which keeps the
//!   total at exactly `events` lines and memory bounded by the episodes in flight.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{Datelike, Days, NaiveDate, Offset, Weekday};

use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND, format_ts};
use crate::util::mix64;

/// What to generate. Same options, byte-identical output.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    pub subscribers: usize,
    /// Total event lines to emit, exactly this many.
    pub events: usize,
    /// Epoch millis of local midnight of the first day.
    pub start: Millis,
    /// Events are spread over this many days (0 is treated as 1).
    pub days: u32,
    /// Local UTC offset used for the `ts` strings and for the diurnal rhythm.
    pub offset_secs: i32,
}

/// 2026-11-24T00:00:00+08:00.
const DEFAULT_START: Millis = 1_795_449_600_000;

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 7,
            subscribers: 10_000,
            events: 200_000,
            start: DEFAULT_START,
            days: 1,
            offset_secs: 8 * 3600,
        }
    }
}

/// Reference data, one JSON object per entry, no trailing newline.
pub struct RefFiles {
    pub subscribers: Vec<String>,
    pub cells: Vec<String>,
    pub calendar: Vec<String>,
    pub stores: Vec<String>,
    /// Roaming destinations with their tariffs, one per country the roaming episodes visit.
    pub countries: Vec<String>,
}

/// All reference data in memory. For large subscriber counts prefer [`write_dir`], which
/// streams the subscriber file.
pub fn reference(opts: &GenOptions) -> RefFiles {
    let m = Model::new(opts);
    RefFiles {
        subscribers: (0..m.n).map(|i| subscriber_line(&m, i)).collect(),
        cells: m.world.cells.iter().map(cell_line).collect(),
        calendar: calendar_lines(&m),
        stores: STORES.iter().enumerate().map(|(k, _)| store_line(k)).collect(),
        countries: COUNTRIES.iter().map(country_line).collect(),
    }
}

/// Event lines (JSON, no newline) in non-decreasing `ts` order, exactly `opts.events` of them.
pub fn events(opts: &GenOptions) -> Events {
    Events::new(opts)
}

/// Writes subscribers.jsonl, cells.jsonl, calendar.jsonl, stores.jsonl, countries.jsonl and
/// events.jsonl into `dir`, creating it. Streams both subscribers and events, so memory stays flat.
pub fn write_dir(opts: &GenOptions, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let m = Model::new(opts);
    let open = |name: &str| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(dir.join(name))?))
    };
    let mut w = open("subscribers.jsonl")?;
    for i in 0..m.n {
        writeln!(w, "{}", subscriber_line(&m, i))?;
    }
    w.flush()?;
    let mut w = open("cells.jsonl")?;
    for c in &m.world.cells {
        writeln!(w, "{}", cell_line(c))?;
    }
    w.flush()?;
    let mut w = open("calendar.jsonl")?;
    for l in calendar_lines(&m) {
        writeln!(w, "{l}")?;
    }
    w.flush()?;
    let mut w = open("stores.jsonl")?;
    for k in 0..STORES.len() {
        writeln!(w, "{}", store_line(k))?;
    }
    w.flush()?;
    let mut w = open("countries.jsonl")?;
    for c in &COUNTRIES {
        writeln!(w, "{}", country_line(c))?;
    }
    w.flush()?;
    let mut w = open("events.jsonl")?;
    for l in Events::with_model(m) {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Writes the event lines to `out` as a live feed: `rate` lines a second, each stamped with the
/// wall-clock time it is written at (the generated sequence keeps its order; its own times are
/// replaced), until `opts.events` lines are out or `out` is closed. For load tests and demos of
/// a live engine: `tidings gen --follow --rate 100000 | tidings run` with a `stdin` source.
/// Lines go out in slices of a millisecond, so the feed is smooth rather than bursty.
pub fn follow(opts: &GenOptions, rate: u64, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
    const SLICE: std::time::Duration = std::time::Duration::from_millis(1);
    let offset = chrono::FixedOffset::east_opt(opts.offset_secs)
        .ok_or_else(|| std::io::Error::other(format!("bad UTC offset {} s", opts.offset_secs)))?;
    let rate = rate.max(1);
    let start = std::time::Instant::now();
    let mut stamp_ms = Millis::MIN;
    let mut stamp = String::new();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut written = 0u64;
    for line in events(opts) {
        // Due at start + written / rate: wait for it (the feed never runs ahead).
        let due = std::time::Duration::from_nanos(written.saturating_mul(1_000_000_000) / rate);
        let now = start.elapsed();
        if due > now {
            out.write_all(&buf)?;
            out.flush()?;
            buf.clear();
            // A millisecond at least: the lines due meanwhile then go out together. Sleeping
            // until each line's own due time wrote (and woke the reader) once a line.
            std::thread::sleep((due - now).max(SLICE));
        }
        let ms = chrono::Utc::now().timestamp_millis();
        if ms != stamp_ms {
            stamp_ms = ms;
            stamp = crate::time::format_ts(ms, offset);
        }
        buf.extend_from_slice(restamp(&line, &stamp).as_bytes());
        buf.push(b'\n');
        written += 1;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(written)
}

/// The line with its `"ts"` value replaced.
fn restamp(line: &str, ts: &str) -> String {
    const KEY: &str = "\"ts\":\"";
    let Some(at) = line.find(KEY) else { return line.to_string() };
    let from = at + KEY.len();
    let Some(len) = line[from..].find('"') else { return line.to_string() };
    let mut s = String::with_capacity(line.len() + 8);
    s.push_str(&line[..from]);
    s.push_str(ts);
    s.push_str(&line[from + len..]);
    s
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// splitmix64: tiny, fast, and its output is fixed forever, which determinism needs more than
/// statistical finesse.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix64(seed ^ 0x5DEE_CE66_D1CE_4E5B))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (lo when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo { lo } else { lo + self.below((hi - lo) as u64) as i64 }
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn weighted(&mut self, w: &[u32]) -> usize {
        let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
        let mut r = self.below(total);
        for (k, &x) in w.iter().enumerate() {
            if r < u64::from(x) {
                return k;
            }
            r -= u64::from(x);
        }
        w.len().saturating_sub(1)
    }

    /// A random element; callers only pass lists that are non-empty by construction.
    fn pick<T: Copy>(&mut self, xs: &[T], fallback: T) -> T {
        if xs.is_empty() { fallback } else { xs[self.below(xs.len() as u64) as usize] }
    }

    /// Roughly log-uniform between lo and hi: durations, volumes and balances are heavy-tailed.
    fn log_range(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}

// ---------------------------------------------------------------------------------------------
// Static reference material

const PREFIXES: [u64; 20] =
    [134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183, 184, 187, 188, 198];
/// Numbers of other operators and provinces, for peers that are not our subscribers.
const PEER_PREFIXES: [u64; 10] = [130, 131, 132, 133, 153, 155, 156, 177, 180, 189];

const BRANDS: [&str; 3] = ["gotone", "mzone", "easyown"];
const TIERS: [&str; 4] = ["high", "valuable", "sub", "negative"];
const HIGH: u8 = 0;
const SUBT: u8 = 2;
const NEG: u8 = 3;
const SERVICES: [&str; 5] = ["12593", "call_notify", "music_club", "weather", "data_pack"];
const SV_12593: u8 = 1;
const SV_CALL_NOTIFY: u8 = 2;
const SV_MUSIC_CLUB: u8 = 4;
const SV_WEATHER: u8 = 8;
const SV_DATA_PACK: u8 = 16;
const PREFS: [&str; 5] = ["music", "business_travel", "sports", "video", "shopping"];
const PF_MUSIC: u8 = 1;
const PF_TRAVEL: u8 = 2;
const STATUSES: [&str; 3] = ["active", "suspended", "pre_cancel"];
const ACTIVE: u8 = 0;

const SERVICE_KINDS: [&str; 4] = ["voice", "sms", "mms", "data"];
const VOICE: u8 = 0;
const SMS: u8 = 1;
const MMS: u8 = 2;
const DATA: u8 = 3;
const DIRS: [&str; 2] = ["mo", "mt"];
const MO: u8 = 0;
const MT: u8 = 1;
const SCOPES: [&str; 5] = ["local", "long_distance", "international", "roaming_domestic", "roaming_international"];
const LOCAL: u8 = 0;
const LONG_DISTANCE: u8 = 1;
const INTERNATIONAL: u8 = 2;
const ROAM_DOM: u8 = 3;
const ROAM_INTL: u8 = 4;
const TRIGGERS: [&str; 4] = ["attach", "handover", "periodic", "detach"];
const ATTACH: u8 = 0;
const HANDOVER: u8 = 1;
const PERIODIC: u8 = 2;
const TOPUP_CHANNELS: [&str; 6] = ["card", "online", "store", "bank", "ussd", "agent"];
const CH_STORE: u8 = 2;
const IVR_STEPS: [&str; 4] = ["enter", "menu", "agent", "exit"];
const STORE_TXNS: [&str; 5] = ["open_package", "topup", "sim_replace", "handset", "inquiry"];
const PAYMENTS: [&str; 5] = ["cash", "card", "wechat", "alipay", "none"];
const CASH: u8 = 0;

/// Ordinary areas: name, latitude, longitude, business district (else residential).
const AREAS: [(&str, f64, f64, bool); 16] = [
    ("国贸", 39.9087, 116.4605, true),
    ("金融街", 39.9155, 116.3560, true),
    ("中关村", 39.9834, 116.3160, true),
    ("望京", 39.9970, 116.4700, true),
    ("西二旗", 40.0530, 116.3060, true),
    ("亦庄", 39.7950, 116.5060, true),
    ("王府井", 39.9150, 116.4110, true),
    ("三里屯", 39.9330, 116.4550, true),
    ("回龙观", 40.0700, 116.3300, false),
    ("天通苑", 40.0700, 116.4200, false),
    ("通州", 39.9090, 116.6560, false),
    ("方庄", 39.8650, 116.4380, false),
    ("石景山", 39.9060, 116.2230, false),
    ("大兴", 39.7270, 116.3400, false),
    ("丰台", 39.8580, 116.2870, false),
    ("双井", 39.8940, 116.4620, false),
];
const CUTOVER_AREA: usize = 2;
const CUTOVER_TAG: &str = "cutover:zgc01";

/// Stores (top-up points): name, address, latitude, longitude. Ids are S001.. in this order.
const STORES: [(&str, &str, f64, f64); 15] = [
    ("西单营业厅", "北京市西城区西单北大街120号", 39.9110, 116.3740),
    ("王府井营业厅", "北京市东城区王府井大街255号", 39.9140, 116.4100),
    ("中关村营业厅", "北京市海淀区中关村大街27号", 39.9830, 116.3160),
    ("国贸营业厅", "北京市朝阳区建国门外大街1号", 39.9085, 116.4590),
    ("望京营业厅", "北京市朝阳区望京街9号", 39.9960, 116.4700),
    ("北京西站营业厅", "北京市丰台区莲花池东路118号", 39.8960, 116.3220),
    ("北京南站营业厅", "北京市丰台区永外车站路12号", 39.8660, 116.3790),
    ("五道口营业厅", "北京市海淀区成府路28号", 39.9930, 116.3380),
    ("亚运村营业厅", "北京市朝阳区安立路60号", 40.0030, 116.4080),
    ("通州营业厅", "北京市通州区新华西街58号", 39.9080, 116.6560),
    ("回龙观营业厅", "北京市昌平区回龙观西大街18号", 40.0740, 116.3300),
    ("亦庄营业厅", "北京市大兴区荣华中路10号", 39.7950, 116.5060),
    ("公主坟营业厅", "北京市海淀区复兴路甲1号", 39.9070, 116.3110),
    ("首都机场营业厅", "北京市顺义区首都机场T3航站楼", 40.0520, 116.6100),
    ("方庄营业厅", "北京市丰台区方庄路9号", 39.8650, 116.4380),
];

/// Railway stations: name, tag suffix, latitude, longitude, cells.
const STATIONS: [(&str, &str, f64, f64, usize); 2] =
    [("北京西站", "beijing_west", 39.8946, 116.3214, 4), ("北京南站", "beijing_south", 39.8652, 116.3786, 3)];
const AIRPORT_CELLS: [(&str, f64, f64); 3] =
    [("首都机场T2", 40.0790, 116.5970), ("首都机场T3-1", 40.0520, 116.6100), ("首都机场T3-2", 40.0545, 116.6130)];
const VENUE: (&str, &str, f64, f64) = ("五棵松体育馆", "venue:wukesong", 39.9087, 116.2741);

/// Visited networks abroad: country, PLMN, place, latitude, longitude.
const FOREIGN: [(&str, &str, &str, f64, f64); 6] = [
    ("JP", "440-10", "东京成田机场", 35.7720, 140.3929),
    ("JP", "440-10", "东京新宿", 35.6900, 139.7000),
    ("KR", "450-05", "首尔仁川机场", 37.4602, 126.4407),
    ("KR", "450-05", "首尔明洞", 37.5636, 126.9850),
    ("TH", "520-01", "曼谷素万那普机场", 13.6900, 100.7501),
    ("TH", "520-01", "曼谷暹罗", 13.7460, 100.5340),
];
/// Roaming destinations and their tariffs (countries.jsonl): code, name, voice fen per minute,
/// SMS fen each, data fen per MB, day pack fen per day. Every country of [`FOREIGN`] is here.
const COUNTRIES: [(&str, &str, u32, u32, u32, u32); 3] =
    [("JP", "日本", 99, 50, 300, 2500), ("KR", "韩国", 99, 50, 300, 2500), ("TH", "泰国", 199, 100, 500, 3000)];
/// Other provinces' cells, where domestic roaming traffic happens.
const DOMESTIC: [(&str, &str, u32, f64, f64); 5] = [
    ("上海虹桥", "shanghai", 2301, 31.1940, 121.3200),
    ("上海陆家嘴", "shanghai", 2302, 31.2400, 121.5000),
    ("天津站", "tianjin", 2201, 39.1360, 117.2100),
    ("石家庄", "shijiazhuang", 3101, 38.0420, 114.5140),
    ("广州天河", "guangzhou", 2001, 23.1350, 113.3300),
];
/// The city that gets weather alerts; its cells are the [`DOMESTIC`] ones of that city plus these.
const ALERT_CITY: &str = "tianjin";
const ALERT_CITY_CELLS: [(&str, u32, f64, f64); 2] =
    [("天津西站", 2202, 39.1580, 117.1630), ("天津滨江道", 2203, 39.1230, 117.1980)];
/// A weather alert for [`ALERT_CITY`] starts at 06:00 local every this many days from day 0 and
/// lasts 24 hours.
const ALERT_EVERY: usize = 7;

/// Relative traffic per local hour: quiet at night, peaks mid-morning and evening.
const DIURNAL: [f64; 24] = [
    2.0, 0.8, 0.5, 0.4, 0.4, 0.7, 1.8, 3.5, 5.0, 6.0, 6.5, 6.2, 5.5, 5.3, 5.6, 5.8, 5.8, 6.0, 6.2, 6.8, 7.0, 6.5, 5.0,
    3.5,
];

// ---------------------------------------------------------------------------------------------
// World: cells and days

struct Cell {
    id: String,
    lat: f64,
    lon: f64,
    name: String,
    tags: Vec<String>,
    country: Option<&'static str>,
}

struct World {
    cells: Vec<Cell>,
    residential: Vec<u32>,
    business: Vec<u32>,
    stations: Vec<Vec<u32>>,
    airport: Vec<u32>,
    venue: Vec<u32>,
    /// One cell per store, in store order.
    store_cells: Vec<u32>,
    domestic: Vec<u32>,
    /// Per visited country: its cells, the airport first.
    foreign: Vec<Vec<u32>>,
    /// Cells of the city that gets weather alerts (tagged `city:tianjin`).
    alert_city: Vec<u32>,
    landmarks: Vec<u32>,
}

impl World {
    fn build(seed: u64, subscribers: usize) -> World {
        let mut rng = Rng::new(seed ^ 0xCE11_5EED);
        let mut w = World {
            cells: Vec::new(),
            residential: Vec::new(),
            business: Vec::new(),
            stations: Vec::new(),
            airport: Vec::new(),
            venue: Vec::new(),
            store_cells: Vec::new(),
            domestic: Vec::new(),
            foreign: Vec::new(),
            alert_city: Vec::new(),
            landmarks: Vec::new(),
        };
        let target = (200 + subscribers / 40).min(5000);
        let city = "city:beijing".to_string();
        for (name, tag, lat, lon, k) in STATIONS {
            let mut ids = Vec::new();
            for j in 0..k {
                let (la, lo) = (lat + rng.range(-20, 21) as f64 * 1e-4, lon + rng.range(-20, 21) as f64 * 1e-4);
                let tags = vec!["railway_station".to_string(), format!("station:{tag}"), city.clone()];
                ids.push(w.add("460-00", 4125, la, lo, format!("{name}-{}", j + 1), tags, None));
            }
            w.landmarks.extend_from_slice(&ids);
            w.stations.push(ids);
        }
        for (name, lat, lon) in AIRPORT_CELLS {
            let id = w.add("460-00", 4130, lat, lon, name.to_string(), vec!["airport".into(), city.clone()], None);
            w.airport.push(id);
            w.landmarks.push(id);
        }
        for j in 0..3 {
            let (la, lo) = (VENUE.2 + rng.range(-8, 9) as f64 * 1e-4, VENUE.3 + rng.range(-8, 9) as f64 * 1e-4);
            let tags = vec![VENUE.1.to_string(), city.clone()];
            let id = w.add("460-00", 4127, la, lo, format!("{}-{}", VENUE.0, j + 1), tags, None);
            w.venue.push(id);
            w.landmarks.push(id);
        }
        for (k, (name, _, lat, lon)) in STORES.iter().enumerate() {
            let tags = vec![format!("store:{}", store_id(k)), "business".into(), city.clone()];
            let id = w.add("460-00", 4140, *lat, *lon, name.to_string(), tags, None);
            w.store_cells.push(id);
            w.landmarks.push(id);
        }
        let ordinary = target.saturating_sub(w.cells.len()).max(AREAS.len() * 4);
        let mut per_area = [0usize; AREAS.len()];
        for c in 0..ordinary {
            let a = c % AREAS.len();
            let (name, lat, lon, business) = AREAS[a];
            per_area[a] += 1;
            let (la, lo) = (lat + rng.range(-150, 151) as f64 * 1e-4, lon + rng.range(-150, 151) as f64 * 1e-4);
            let mut tags = vec![if business { "business" } else { "residential" }.to_string(), city.clone()];
            if a == CUTOVER_AREA && per_area[a] <= 6 {
                tags.push(CUTOVER_TAG.to_string());
            }
            let id = w.add("460-00", 4101 + a as u32, la, lo, format!("{name}-{}", per_area[a]), tags, None);
            if business { w.business.push(id) } else { w.residential.push(id) }
        }
        for (name, city, lac, lat, lon) in DOMESTIC {
            let tags = vec![format!("city:{city}"), "roaming_domestic".into()];
            let id = w.add("460-00", lac, lat, lon, name.to_string(), tags, None);
            w.domestic.push(id);
            if city == ALERT_CITY {
                w.alert_city.push(id);
            }
        }
        let mut last_country = "";
        for (k, (country, plmn, name, lat, lon)) in FOREIGN.iter().enumerate() {
            let tags = vec!["roaming_international".into(), format!("country:{country}")];
            let id = w.add(plmn, 1001 + k as u32, *lat, *lon, name.to_string(), tags, Some(*country));
            if *country != last_country {
                w.foreign.push(Vec::new());
                last_country = *country;
            }
            if let Some(v) = w.foreign.last_mut() {
                v.push(id);
            }
        }
        // Added after the others so that the older cells keep their identities.
        for (name, lac, lat, lon) in ALERT_CITY_CELLS {
            let tags = vec![format!("city:{ALERT_CITY}"), "roaming_domestic".into()];
            let id = w.add("460-00", lac, lat, lon, name.to_string(), tags, None);
            w.alert_city.push(id);
        }
        w
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        plmn: &str,
        lac: u32,
        lat: f64,
        lon: f64,
        name: String,
        tags: Vec<String>,
        country: Option<&'static str>,
    ) -> u32 {
        let c = self.cells.len() as u64;
        // A stride coprime to the modulus keeps cell identities unique yet not sequential.
        let ci = 10_000 + (c * 7919) % 89_999;
        self.cells.push(Cell {
            id: format!("{plmn}-{lac}-{ci}"),
            lat: (lat * 1e5).round() / 1e5,
            lon: (lon * 1e5).round() / 1e5,
            name,
            tags,
            country,
        });
        c as u32
    }

    fn id(&self, cell: u32) -> &str {
        self.cells.get(cell as usize).map_or("", |c| c.id.as_str())
    }
}

fn store_id(k: usize) -> String {
    format!("S{:03}", k + 1)
}

struct DayInfo {
    date: NaiveDate,
    workday: bool,
    /// YYYY-MM-DD thirty days ahead, for contract expiry notices.
    plus30: String,
    /// Last day of the month, when points expire.
    month_end: String,
}

/// Everything derived from the options that both reference data and events need.
struct Model {
    seed: u64,
    n: u32,
    events: usize,
    start: Millis,
    days: u32,
    offset: chrono::FixedOffset,
    world: World,
    days_info: Vec<DayInfo>,
    msisdn_mul: u64,
    msisdn_add: u64,
    /// Affine permutation of subscriber indices, so that heavy users are scattered over the base.
    perm_a: u64,
    perm_b: u64,
    /// Churners are the indices whose image under `i -> (i * churn_a + churn_b) mod n` falls
    /// below `churners.len()`; `churners[j]` is the index mapped to `j`.
    churn_a: u64,
    churn_b: u64,
    churners: Vec<u32>,
}

impl Model {
    fn new(opts: &GenOptions) -> Model {
        let n = opts.subscribers.clamp(1, u32::MAX as usize / 2) as u32;
        let days = opts.days.max(1);
        let offset = chrono::FixedOffset::east_opt(opts.offset_secs).unwrap_or(chrono::Utc.fix());
        let seed = opts.seed;
        let days_info = (0..days)
            .map(|d| {
                let local = opts.start + i64::from(d) * DAY + i64::from(opts.offset_secs) * SECOND;
                let date = chrono::DateTime::from_timestamp_millis(local).map(|t| t.date_naive()).unwrap_or_default();
                let plus30 = date.checked_add_days(Days::new(30)).unwrap_or(date);
                let next_month = if date.month() == 12 {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
                };
                let month_end = next_month.and_then(|d| d.pred_opt()).unwrap_or(date);
                DayInfo {
                    date,
                    workday: !matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                    plus30: plus30.format("%Y-%m-%d").to_string(),
                    month_end: month_end.format("%Y-%m-%d").to_string(),
                }
            })
            .collect();
        // Coprime to 2 and 5, hence to the 20 x 10^8 number space.
        let mut mul = mix64(seed ^ 0x1357_9BDF) % 900_000_000 + 100_000_000;
        if mul.is_multiple_of(2) {
            mul += 1;
        }
        if mul.is_multiple_of(5) {
            mul += 2;
        }
        let nn = u64::from(n);
        let coprime = |salt: u64| {
            (0..64u64).map(|k| mix64(seed ^ salt ^ k) % nn).find(|&cand| cand > 0 && gcd(cand, nn) == 1).unwrap_or(1)
        };
        let perm_a = coprime(0xACE0_0000);
        // About 0.5 % of the base, at least 10 (but never more than a fifth of a tiny base).
        let churn_k = (nn / 200).max(10).min(nn / 5);
        let churn_a = coprime(0xC4A0_0000);
        let churn_b = mix64(seed ^ 0xC4B) % nn;
        let churn_inv = mod_inverse(churn_a, nn);
        let churners = (0..churn_k)
            .map(|j| ((u128::from((j + nn - churn_b) % nn) * u128::from(churn_inv)) % u128::from(nn)) as u32)
            .collect();
        Model {
            seed,
            n,
            events: opts.events,
            start: opts.start,
            days,
            offset,
            world: World::build(seed, n as usize),
            days_info,
            msisdn_mul: mul,
            msisdn_add: mix64(seed ^ 0x2468_ACE0) % (PREFIXES.len() as u64 * 100_000_000),
            perm_a,
            perm_b: mix64(seed ^ 0xB0B) % nn,
            churn_a,
            churn_b,
            churners,
        }
    }

    /// A high-value subscriber who spends steadily, then goes almost silent from
    /// [`Model::churn_stop`] on: the churn-warning story.
    fn is_churner(&self, i: u32) -> bool {
        let nn = u64::from(self.n);
        let rank = (u128::from(i) * u128::from(self.churn_a) + u128::from(self.churn_b)) % u128::from(nn);
        rank < self.churners.len() as u128
    }

    /// The day a churner stops spending: two weeks or so before the end of a window long enough
    /// for a 7-day drop against the 28 days before to show; never in shorter windows.
    fn churn_stop(&self, i: u32) -> u32 {
        if self.days < 21 {
            return u32::MAX;
        }
        self.days - 14 + (mix64(self.seed ^ 0x5709 ^ u64::from(i)) % 4) as u32
    }

    /// Whether day `d` (0-based) opens a weather alert.
    fn alert_day(&self, d: usize) -> bool {
        d.is_multiple_of(ALERT_EVERY)
    }

    /// Whether a weather alert is on at time t (06:00 of an alert day to 06:00 the next day).
    fn alert_on(&self, t: Millis) -> bool {
        let since = t - 6 * HOUR - self.start;
        since >= 0 && self.alert_day((since / DAY) as usize)
    }

    fn end(&self) -> Millis {
        self.start + i64::from(self.days) * DAY
    }

    fn day_of(&self, t: Millis) -> usize {
        (((t - self.start).max(0) / DAY) as usize).min(self.days_info.len().saturating_sub(1))
    }

    fn hour_of(&self, t: Millis) -> i64 {
        (t - self.start).rem_euclid(DAY) / HOUR
    }

    /// Subscriber numbers: an affine bijection over prefix x 8-digit body, so neighbouring
    /// indices get unrelated numbers and no two subscribers share one.
    fn msisdn(&self, i: u32) -> u64 {
        let space = PREFIXES.len() as u128 * 100_000_000;
        let x = ((u128::from(i) * u128::from(self.msisdn_mul) + u128::from(self.msisdn_add)) % space) as u64;
        PREFIXES[(x / 100_000_000) as usize % PREFIXES.len()] * 100_000_000 + x % 100_000_000
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `n` (`a` coprime to `n`; 0 when n is 1).
fn mod_inverse(a: u64, n: u64) -> u64 {
    let (mut r0, mut r1) = (i128::from(n), i128::from(a % n.max(1)));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i128::from(n.max(1))) as u64
}

// ---------------------------------------------------------------------------------------------
// Subscribers

const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

#[derive(Clone, Copy)]
struct Sub {
    idx: u32,
    msisdn: u64,
    brand: u8,
    tier: u8,
    arpu: u32,
    join_back_days: u64,
    birthday: (u32, u32),
    corporate: bool,
    foreign: bool,
    employee: bool,
    services: u8,
    /// Has 12593 but dials long distance without it.
    ignores_12593: bool,
    /// 0 none, 1 all channels, 2 sms only.
    dnd: u8,
    status: u8,
    prefs: u8,
    /// 0 sms, 1 call, 2 none.
    channel_pref: u8,
    balance0: i32,
    home: u32,
    work: u32,
    /// Usage fades in the second half of a multi-day window: churn-warning material.
    fading: bool,
    /// Spends steadily, then stops (see [`Model::is_churner`]); episodes leave them alone.
    churner: bool,
}

impl Sub {
    fn derive(m: &Model, i: u32) -> Sub {
        let mut r = Rng(mix64(m.seed ^ mix64(u64::from(i).wrapping_add(0xA076_1D64_78BD_642F))));
        let brand = r.weighted(&[35, 40, 25]) as u8;
        let mut tier = r.weighted(&[10, 65, 20, 5]) as u8;
        let mut arpu = match tier {
            HIGH => r.range(5000, 30_000),
            1 => r.range(2000, 5000),
            SUBT => r.range(1000, 2000),
            _ => r.range(300, 1000),
        } as u32;
        let join_back_days = 30 + r.below(365 * 18);
        let doy = r.below(365) as u32;
        let mut birthday = (12, 31);
        let mut acc = 0;
        for (mi, &len) in MONTH_DAYS.iter().enumerate() {
            if doy < acc + len {
                birthday = (mi as u32 + 1, doy - acc + 1);
                break;
            }
            acc += len;
        }
        let mut corporate = r.chance(0.08);
        let mut foreign = r.chance(0.01);
        let employee = r.chance(0.01);
        let prefs = {
            let mut p = 0u8;
            for (bit, prob) in [0.20, 0.15, 0.12, 0.18, 0.15].iter().enumerate() {
                if r.chance(*prob) {
                    p |= 1 << bit;
                }
            }
            p
        };
        let music_club_p = if prefs & PF_MUSIC != 0 { 0.15 } else { 0.025 };
        let mut services = 0u8;
        for (bit, prob) in [0.10, 0.25, music_club_p, 0.15, 0.30].iter().enumerate() {
            if r.chance(*prob) {
                services |= 1 << bit;
            }
        }
        let ignores_12593 = r.chance(0.3);
        let mut dnd = r.weighted(&[95, 3, 2]) as u8;
        let mut status = r.weighted(&[960, 25, 15]) as u8;
        let channel_pref = r.weighted(&[50, 10, 40]) as u8;
        let mut balance0 = if r.chance(0.03) {
            r.range(100, 1000)
        } else if tier == HIGH {
            r.log_range(2000.0, 40_000.0) as i64
        } else {
            r.log_range(500.0, 15_000.0) as i64
        } as i32;
        let home = r.pick(&m.world.residential, 0);
        let work = r.pick(&m.world.business, home);
        let mut fading = tier == HIGH && r.chance(0.05);
        let mut brand = brand;
        // A few guaranteed birthdays on every generated day, eligible for the greeting, so that
        // even a tiny run exercises the birthday rule.
        let guaranteed = (u64::from(i) < 3 * u64::from(m.days)).then(|| m.days_info.get((i % m.days) as usize));
        if let Some(Some(d)) = guaranteed {
            birthday = (d.date.month(), d.date.day());
            brand = 0;
            corporate = false;
            foreign = false;
            dnd = 0;
        }
        // Churners: high value, active, contactable, and with credit enough for weeks of spending
        // (their usage must show in full, not be cut short by an empty prepaid account).
        let churner = m.is_churner(i);
        if churner {
            let h = mix64(m.seed ^ 0xC0DE ^ u64::from(i));
            tier = HIGH;
            arpu = 8000 + (h % 20_000) as u32;
            status = ACTIVE;
            dnd = 0;
            balance0 = 60_000 + ((h >> 20) % 100_000) as i32;
            fading = false;
        }
        Sub {
            idx: i,
            msisdn: m.msisdn(i),
            brand,
            tier,
            arpu,
            join_back_days,
            birthday,
            corporate,
            foreign,
            employee,
            services,
            ignores_12593,
            dnd,
            status,
            prefs,
            channel_pref,
            balance0,
            home,
            work,
            fading,
            churner,
        }
    }

    fn active(&self) -> bool {
        self.status == ACTIVE
    }
}

fn push_str_list(out: &mut String, names: &[&str], mask: u8) {
    out.push('[');
    let mut first = true;
    for (bit, name) in names.iter().enumerate() {
        if mask & (1 << bit) != 0 {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(name);
            out.push('"');
        }
    }
    out.push(']');
}

fn subscriber_line(m: &Model, i: u32) -> String {
    let s = Sub::derive(m, i);
    // Households: an odd index may share its customer (and often the account) with the one before.
    let pair = mix64(m.seed ^ 0xFA31 ^ u64::from(i));
    let customer = if i % 2 == 1 && pair % 10 < 2 { i } else { i + 1 };
    let account = if customer == i && pair % 10 == 1 { i + 1 } else { customer };
    let first_day = m.days_info.first().map(|d| d.date).unwrap_or_default();
    let join = first_day.checked_sub_days(Days::new(s.join_back_days)).unwrap_or(first_day);
    let mut o = String::with_capacity(360);
    let _ = write!(
        o,
        "{{\"msisdn\":\"{}\",\"customer_id\":\"C{:08}\",\"account_id\":\"A{:08}\",\"brand\":\"{}\",\"tier\":\"{}\",\"arpu_fen\":{},\"join_date\":\"{}\",\"birthday\":\"{:02}-{:02}\",\"corporate\":{},\"foreign\":{},\"employee\":{},\"services\":",
        s.msisdn,
        customer,
        account,
        BRANDS[s.brand as usize % 3],
        TIERS[s.tier as usize % 4],
        s.arpu,
        join.format("%Y-%m-%d"),
        s.birthday.0,
        s.birthday.1,
        s.corporate,
        s.foreign,
        s.employee,
    );
    push_str_list(&mut o, &SERVICES, s.services);
    o.push_str(match s.dnd {
        1 => ",\"dnd\":true",
        2 => ",\"dnd\":[\"sms\"]",
        _ => ",\"dnd\":false",
    });
    let _ = write!(o, ",\"status\":\"{}\",\"prefs\":", STATUSES[s.status as usize % 3]);
    push_str_list(&mut o, &PREFS, s.prefs);
    o.push_str(match s.channel_pref {
        0 => ",\"channel_pref\":\"sms\"}",
        1 => ",\"channel_pref\":\"call\"}",
        _ => ",\"channel_pref\":null}",
    });
    o
}

/// JSON string literal; the names here are plain, but escaping keeps the output valid regardless.
fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn cell_line(c: &Cell) -> String {
    let tags: Vec<String> = c.tags.iter().map(|t| json_str(t)).collect();
    format!(
        "{{\"id\":{},\"lat\":{},\"lon\":{},\"name\":{},\"tags\":[{}]}}",
        json_str(&c.id),
        c.lat,
        c.lon,
        json_str(&c.name),
        tags.join(",")
    )
}

fn store_line(k: usize) -> String {
    let (name, address, lat, lon) = STORES[k % STORES.len()];
    format!(
        "{{\"id\":\"{}\",\"name\":{},\"address\":{},\"lat\":{},\"lon\":{}}}",
        store_id(k),
        json_str(name),
        json_str(address),
        lat,
        lon
    )
}

fn country_line(c: &(&str, &str, u32, u32, u32, u32)) -> String {
    let (code, name, voice, sms, data, day_pack) = *c;
    format!(
        "{{\"code\":{},\"name\":{},\"voice_fen\":{voice},\"sms_fen\":{sms},\"data_fen\":{data},\"day_pack_fen\":{day_pack}}}",
        json_str(code),
        json_str(name)
    )
}

/// Fixed-date festivals an operator greets on: month, day, name, title.
const FESTIVALS: [(u32, u32, &str, &str); 5] = [
    (1, 1, "new_year", "元旦"),
    (5, 1, "labour_day", "劳动节"),
    (10, 1, "national_day", "国庆节"),
    (12, 25, "christmas", "圣诞节"),
    (3, 8, "womens_day", "妇女节"),
];

fn calendar_lines(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    let ts = |t: Millis| format_ts(t, m.offset);
    for (d, info) in m.days_info.iter().enumerate() {
        let day0 = m.start + d as i64 * DAY;
        // Day-suffixed names only when there is more than one concert to tell apart.
        let name = if d == 0 {
            "concert_wukesong".to_string()
        } else {
            format!("concert_wukesong_{}", info.date.format("%Y%m%d"))
        };
        out.push(format!(
            "{{\"name\":\"{name}\",\"kind\":\"concert\",\"title\":\"五棵松演唱会\",\"venue\":\"{}\",\"start\":\"{}\",\"end\":\"{}\"}}",
            VENUE.1,
            ts(day0 + 19 * HOUR + 30 * MINUTE),
            ts(day0 + 22 * HOUR + 30 * MINUTE)
        ));
    }
    // Weather alerts for the alert city, 06:00 to 06:00, on every few days of the window.
    for (d, info) in m.days_info.iter().enumerate().filter(|(d, _)| m.alert_day(*d)) {
        let from = m.start + d as i64 * DAY + 6 * HOUR;
        out.push(format!(
            "{{\"name\":\"weather_alert_{ALERT_CITY}_{}\",\"kind\":\"weather_alert\",\"title\":\"暴雨蓝色预警\",\"venue\":\"city:{ALERT_CITY}\",\"start\":\"{}\",\"end\":\"{}\"}}",
            info.date.format("%Y%m%d"),
            ts(from),
            ts(from + DAY)
        ));
    }
    // Festivals in the window, or at least the next one, so the greeting rule has a date to use.
    let first = m.days_info.first().map(|d| d.date).unwrap_or_default();
    let last = m.days_info.last().map(|d| d.date).unwrap_or(first);
    let horizon = last.checked_add_days(Days::new(45)).unwrap_or(last);
    let mut fest: Vec<(NaiveDate, &str, &str)> = Vec::new();
    for y in first.year()..=horizon.year() + 1 {
        for (mo, da, name, title) in FESTIVALS {
            if let Some(date) = NaiveDate::from_ymd_opt(y, mo, da)
                && date >= first
            {
                fest.push((date, name, title));
            }
        }
    }
    fest.sort();
    for (k, (date, name, title)) in fest.iter().enumerate() {
        if k > 0 && *date > horizon {
            break;
        }
        let day0 = m.start + (*date - first).num_days() * DAY;
        out.push(format!(
            "{{\"name\":\"{name}_{}\",\"kind\":\"festival\",\"title\":\"{title}\",\"start\":\"{}\",\"end\":\"{}\"}}",
            date.year(),
            ts(day0),
            ts(day0 + DAY)
        ));
    }
    // A network cut-over in the night after the window, announced to whoever is seen in its cells.
    let cut0 = m.end() + HOUR;
    out.push(format!(
        "{{\"name\":\"cutover_zgc01\",\"kind\":\"cutover\",\"title\":\"中关村基站割接\",\"venue\":\"{CUTOVER_TAG}\",\"start\":\"{}\",\"end\":\"{}\"}}",
        ts(cut0),
        ts(cut0 + 4 * HOUR)
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// Events

#[derive(Clone, Copy)]
struct Usage {
    service: u8,
    dir: u8,
    scope: u8,
    peer: u64,
    duration: u32,
    volume: u32,
    count: u8,
    charge: u32,
    cell: u32,
    via: bool,
    /// Balance after this charge, overriding the running one: deductions the stream never shows
    /// (monthly rental, other lines of the account) are how a balance gets low between records.
    force_after: Option<i32>,
}

#[derive(Clone, Copy)]
enum Ev {
    Loc {
        cell: u32,
        trigger: u8,
    },
    Usage(Usage),
    Topup {
        amount: u32,
        channel: u8,
        store: u8,
    },
    Ivr {
        session: u64,
        step: u8,
        node: [u8; 3],
        depth: u8,
    },
    StoreVisit {
        store: u8,
        txn: u8,
        payment: u8,
    },
    /// The call centre's result for the call-back of a closed complaint (an `outcome` event):
    /// the action id it reports on, and the result.
    CallResult {
        action: u64,
        status: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ep {
    Rail,
    Airport,
    LongDistance,
    Concert,
    IvrTopic3,
    LowBalance,
    StoreCash,
    Roaming,
    WeatherTrip,
    Churn,
}

#[derive(Clone, Copy)]
enum What {
    /// An episode clock's next start.
    Start {
        clock: u8,
        day: u32,
        idx: u32,
    },
    Line {
        sub: u32,
        ev: Ev,
        clear: u8,
    },
}

struct Item {
    t: Millis,
    seq: u64,
    what: What,
}

// Reversed so that BinaryHeap (a max-heap) pops the earliest; seq breaks ties deterministically.
impl Ord for Item {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t, other.seq).cmp(&(self.t, self.seq))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
    }
}
impl Eq for Item {}

struct Clock {
    ep: Ep,
    per_day: u32,
    from: Millis,
    to: Millis,
}

/// Never top up: the "low balance and no top-up since" story.
const F_NO_TOPUP: u8 = 1;
/// In an episode that fixes where they are (a venue, a station, abroad): the background leaves
/// them alone, or its home/work cells would interleave with the episode's and break dwell times.
const F_BUSY: u8 = 2;
/// No background top-up until the episode's own line clears it.
const F_HOLD: u8 = 4;
const BALANCE_UNSET: i32 = i32::MIN;
/// Charged usage lines a day per churner while they still spend.
const CHURN_USES: usize = 4;

/// The event stream; see [`events`].
pub struct Events {
    m: Model,
    rng: Rng,
    balance: Vec<i32>,
    flags: Vec<u8>,
    heap: BinaryHeap<Item>,
    clocks: Vec<Clock>,
    seq: u64,
    /// Episode lines scheduled but not yet paid for by a skipped background tick.
    debt: u64,
    emitted: usize,
    serial: u64,
    /// Cumulative diurnal weight at each hour boundary of the window.
    cum: Vec<f64>,
    slot: u64,
    slot_time: Option<Millis>,
    hour_ptr: usize,
    ts_sec: i64,
    ts_str: String,
}

impl Events {
    fn new(opts: &GenOptions) -> Events {
        Events::with_model(Model::new(opts))
    }

    fn with_model(m: Model) -> Events {
        let n = m.n as usize;
        let mut rng = Rng::new(m.seed ^ 0xE7E7_E7E7);
        let mut cum = Vec::with_capacity(m.days as usize * 24 + 1);
        cum.push(0.0);
        let mut acc = 0.0;
        for _ in 0..m.days {
            let day_factor = 0.92 + 0.16 * rng.unit();
            for w in DIURNAL {
                acc += w * day_factor;
                cum.push(acc);
            }
        }
        // Episodes scale with traffic per day, with a floor so that small runs still show each.
        let rate = m.events / m.days as usize;
        let per = |div: usize, floor: usize| (rate / div).max(floor) as u32;
        let mut clocks = vec![
            Clock { ep: Ep::Rail, per_day: per(15_000, 4), from: 6 * HOUR + 30 * MINUTE, to: 20 * HOUR },
            Clock { ep: Ep::Airport, per_day: per(40_000, 3), from: 6 * HOUR, to: 19 * HOUR },
            Clock { ep: Ep::LongDistance, per_day: per(10_000, 4), from: 9 * HOUR, to: 15 * HOUR + 30 * MINUTE },
            Clock {
                ep: Ep::Concert,
                per_day: per(8_000, 5),
                from: 18 * HOUR + 50 * MINUTE,
                to: 19 * HOUR + 30 * MINUTE,
            },
            Clock { ep: Ep::IvrTopic3, per_day: per(10_000, 4), from: 8 * HOUR, to: 19 * HOUR },
            Clock { ep: Ep::LowBalance, per_day: per(10_000, 4), from: 7 * HOUR, to: 19 * HOUR },
            Clock {
                ep: Ep::StoreCash,
                per_day: per(20_000, 3),
                from: 9 * HOUR + 30 * MINUTE,
                to: 19 * HOUR + 30 * MINUTE,
            },
            Clock { ep: Ep::Roaming, per_day: per(40_000, 2), from: 6 * HOUR, to: 13 * HOUR },
            // Arrivals (40 to 120 minutes after the start) fall between 09:00 and 20:00.
            Clock { ep: Ep::WeatherTrip, per_day: per(20_000, 4), from: 8 * HOUR + 20 * MINUTE, to: 18 * HOUR },
        ];
        // Every churner's day: a few charged calls and sessions, spread over the waking hours.
        if !m.churners.is_empty() {
            let per_day = (m.churners.len() * CHURN_USES).min(u32::MAX as usize) as u32;
            clocks.push(Clock { ep: Ep::Churn, per_day, from: 8 * HOUR, to: 22 * HOUR });
        }
        let mut ev = Events {
            m,
            rng,
            balance: vec![BALANCE_UNSET; n],
            flags: vec![0; n],
            heap: BinaryHeap::new(),
            clocks,
            seq: 0,
            debt: 0,
            emitted: 0,
            serial: 0,
            cum,
            slot: 0,
            slot_time: None,
            hour_ptr: 0,
            ts_sec: i64::MIN,
            ts_str: String::new(),
        };
        for c in 0..ev.clocks.len() {
            ev.schedule_clock(c as u8, 0, 0);
        }
        ev
    }

    fn schedule_clock(&mut self, clock: u8, mut day: u32, mut idx: u32) {
        let Some(c) = self.clocks.get(clock as usize) else {
            return;
        };
        let (per_day, from, to) = (c.per_day.max(1), c.from, c.to);
        if idx >= per_day {
            day += 1;
            idx = 0;
        }
        if day >= self.m.days {
            return;
        }
        let frac = (f64::from(idx) + self.rng.unit()) / f64::from(per_day);
        let t = self.m.start + i64::from(day) * DAY + from + ((to - from) as f64 * frac) as i64;
        let t = t - t.rem_euclid(SECOND);
        self.seq += 1;
        self.heap.push(Item { t, seq: self.seq, what: What::Start { clock, day, idx } });
    }

    /// Schedules one line of an episode; lines past the window are dropped, not clamped.
    /// Periodic location updates in `cell` every `gap` minutes after `t`, until `until` (at
    /// most `max` of them): someone staying put somewhere away from home.
    fn periodic_until(&mut self, i: u32, cell: u32, mut t: Millis, until: Millis, gap: (i64, i64), max: usize) {
        for _ in 0..max {
            t += self.rng.range(gap.0, gap.1) * MINUTE;
            if t >= until {
                break;
            }
            self.push(t, i, Ev::Loc { cell, trigger: PERIODIC }, 0);
        }
    }

    fn push(&mut self, t: Millis, sub: u32, ev: Ev, clear: u8) -> bool {
        if t >= self.m.end() {
            return false;
        }
        self.seq += 1;
        self.debt += 1;
        self.heap.push(Item { t: t - t.rem_euclid(SECOND), seq: self.seq, what: What::Line { sub, ev, clear } });
        true
    }

    fn slots(&self) -> u64 {
        self.m.events as u64
    }

    /// Time of the current background tick: the slot's quantile of the diurnal density.
    fn peek_slot(&mut self) -> Option<Millis> {
        if self.slot >= self.slots() {
            return None;
        }
        if let Some(t) = self.slot_time {
            return Some(t);
        }
        let total = self.cum.last().copied().unwrap_or(0.0);
        let x = (self.slot as f64 + self.rng.unit()) / self.slots() as f64 * total;
        let hours = self.cum.len().saturating_sub(1);
        while self.hour_ptr + 1 < hours && self.cum[self.hour_ptr + 1] <= x {
            self.hour_ptr += 1;
        }
        let h = self.hour_ptr;
        let w = (self.cum[h + 1] - self.cum[h]).max(f64::MIN_POSITIVE);
        let within = ((x - self.cum[h]) / w).clamp(0.0, 0.999_999);
        let secs = h as i64 * 3600 + (within * 3600.0) as i64;
        let t = self.m.start + secs * SECOND;
        self.slot_time = Some(t);
        Some(t)
    }

    fn sub(&self, i: u32) -> Sub {
        Sub::derive(&self.m, i)
    }

    fn balance_mut(&mut self, s: &Sub) -> Option<&mut i32> {
        let b = self.balance.get_mut(s.idx as usize)?;
        if *b == BALANCE_UNSET {
            *b = s.balance0;
        }
        Some(b)
    }

    fn flag(&self, i: u32) -> u8 {
        self.flags.get(i as usize).copied().unwrap_or(0)
    }

    fn set_flag(&mut self, i: u32, f: u8) {
        if let Some(x) = self.flags.get_mut(i as usize) {
            *x |= f;
        }
    }

    /// A subscriber for ordinary traffic: skewed toward heavy users, mostly active ones.
    fn draw(&mut self, t: Millis) -> Sub {
        let n = u64::from(self.m.n);
        let late = self.m.days >= 2 && self.m.day_of(t) as u64 * 2 >= u64::from(self.m.days);
        let mut attempt = 0;
        loop {
            // Heavy users: 15% of traffic from the top 2% of ranks, 25% from the top 20%.
            let span = match self.rng.weighted(&[15, 25, 60]) {
                0 => n.div_ceil(50),
                1 => n.div_ceil(5),
                _ => n,
            };
            let rank = self.rng.below(span);
            let i = ((u128::from(rank) * u128::from(self.m.perm_a) + u128::from(self.m.perm_b)) % u128::from(n)) as u32;
            let s = self.sub(i);
            attempt += 1;
            if attempt >= 6 {
                return s;
            }
            if self.flag(i) & F_BUSY != 0 {
                continue;
            }
            if !s.active() && self.rng.chance(0.7) {
                continue;
            }
            if s.fading && late && self.rng.chance(0.9) {
                continue;
            }
            // A churner who has stopped is gone from ordinary traffic too.
            if s.churner && self.m.day_of(t) as u64 >= u64::from(self.m.churn_stop(i)) {
                continue;
            }
            return s;
        }
    }

    /// A subscriber who fits an episode; uniform over the base, bounded search. Churners have
    /// their own story and are left out of the others.
    fn pick(&mut self, want: impl Fn(&Sub) -> bool) -> Sub {
        let n = u64::from(self.m.n);
        let mut last = self.sub(0);
        for _ in 0..4000 {
            let i = self.rng.below(n) as u32;
            last = self.sub(i);
            if want(&last) && !last.churner && self.flag(i) & F_BUSY == 0 {
                return last;
            }
        }
        last
    }

    /// Where the subscriber plausibly is at time t: work on working hours, home otherwise.
    fn cell_for(&mut self, s: &Sub, t: Millis) -> u32 {
        let r = self.rng.unit();
        if r < 0.01 {
            return self.rng.pick(&self.m.world.landmarks, s.home);
        }
        if r < 0.09 {
            let pool = if self.rng.chance(0.5) { &self.m.world.business } else { &self.m.world.residential };
            return self.rng.pick(pool, s.home);
        }
        let hour = self.m.hour_of(t);
        let workday = self.m.days_info.get(self.m.day_of(t)).is_some_and(|d| d.workday);
        let at_work = workday && (9..18).contains(&hour);
        if self.rng.chance(0.85) == at_work { s.work } else { s.home }
    }

    fn ordinary_cell(&mut self, s: &Sub) -> u32 {
        if self.rng.chance(0.5) { s.home } else { s.work }
    }

    fn peer(&mut self, own: bool) -> u64 {
        if own && self.rng.chance(0.5) {
            let j = self.rng.below(u64::from(self.m.n)) as u32;
            return self.m.msisdn(j);
        }
        let prefix = self.rng.pick(&PEER_PREFIXES, 130);
        prefix * 100_000_000 + self.rng.below(100_000_000)
    }

    // --- the merge loop -----------------------------------------------------------------------

    fn step(&mut self) -> Option<String> {
        while self.emitted < self.m.events {
            let bg = self.peek_slot();
            let take_heap = match (self.heap.peek(), bg) {
                (Some(it), Some(b)) => it.t <= b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            if take_heap {
                let it = self.heap.pop()?;
                match it.what {
                    What::Start { clock, day, idx } => {
                        self.schedule_clock(clock, day, idx + 1);
                        if let Some(ep) = self.clocks.get(clock as usize).map(|c| c.ep) {
                            self.episode(ep, it.t, day, idx);
                        }
                    }
                    What::Line { sub, ev, clear } => {
                        if let Some(f) = self.flags.get_mut(sub as usize) {
                            *f &= !clear;
                        }
                        let s = self.sub(sub);
                        return Some(self.render(it.t, &s, &ev));
                    }
                }
            } else {
                let t = bg?;
                self.slot += 1;
                self.slot_time = None;
                if self.debt > 0 {
                    self.debt -= 1;
                    continue;
                }
                if let Some(line) = self.background(t) {
                    return Some(line);
                }
            }
        }
        None
    }

    /// One background tick: a single ordinary event, or the start of an IVR session (whose lines
    /// go through the heap; the tick itself pays for the first of them).
    fn background(&mut self, t: Millis) -> Option<String> {
        // Line shares: location 40, usage 45, topup 5, ivr 5 (sessions of ~4 lines), crm 4, profile 1.
        let mut kind = self.rng.weighted(&[400, 450, 50, 12, 40, 10]);
        let s = self.draw(t);
        // A churner's profile stays as the story needs it (high tier, contactable).
        if kind == 5 && s.churner {
            kind = 0;
        }
        match kind {
            0 => Some(self.bg_location(&s, t)),
            1 => Some(self.bg_usage(&s, t)),
            2 => Some(self.bg_topup(t)),
            3 => {
                if self.ivr_session(&s, t) {
                    self.debt = self.debt.saturating_sub(1);
                    None
                } else {
                    Some(self.bg_location(&s, t))
                }
            }
            4 => Some(self.bg_crm(&s, t)),
            _ => Some(self.bg_profile(&s, t)),
        }
    }

    fn bg_location(&mut self, s: &Sub, t: Millis) -> String {
        let cell = self.cell_for(s, t);
        let trigger = self.rng.weighted(&[12, 30, 50, 8]) as u8;
        self.render(t, s, &Ev::Loc { cell, trigger })
    }

    fn bg_usage(&mut self, s: &Sub, t: Millis) -> String {
        let service = self.rng.weighted(&[35, 15, 1, 49]) as u8;
        let mut cell = self.cell_for(s, t);
        let travel = s.prefs & PF_TRAVEL != 0;
        let u = match service {
            VOICE => {
                let dir = self.rng.weighted(&[55, 45]) as u8;
                let scope = if travel {
                    self.rng.weighted(&[60, 22, 4, 14]) as u8
                } else {
                    self.rng.weighted(&[82, 12, 2, 4]) as u8
                };
                if scope == ROAM_DOM {
                    cell = self.rng.pick(&self.m.world.domestic, cell);
                }
                let duration = self.rng.log_range(8.0, 1800.0) as u32;
                let via = dir == MO
                    && matches!(scope, LONG_DISTANCE | ROAM_DOM)
                    && s.services & SV_12593 != 0
                    && !s.ignores_12593
                    && self.rng.chance(0.85);
                let charge = self.voice_charge(scope, dir, duration, via);
                Usage {
                    service,
                    dir,
                    scope,
                    peer: self.peer(scope == LOCAL),
                    duration,
                    volume: 0,
                    count: 0,
                    charge,
                    cell,
                    via,
                    force_after: None,
                }
            }
            SMS | MMS => {
                let dir = self.rng.weighted(&[50, 50]) as u8;
                let scope = if self.rng.chance(0.03) { INTERNATIONAL } else { LOCAL };
                let count = if service == MMS { 1 } else { self.rng.weighted(&[0, 85, 10, 5]) as u8 };
                let unit = match (service, scope) {
                    (MMS, _) => 30,
                    (_, INTERNATIONAL) => 100,
                    _ => 10,
                };
                let charge = if dir == MO && self.rng.chance(0.6) { unit * u32::from(count) } else { 0 };
                Usage {
                    service,
                    dir,
                    scope,
                    peer: self.peer(true),
                    duration: 0,
                    volume: 0,
                    count,
                    charge,
                    cell,
                    via: false,
                    force_after: None,
                }
            }
            _ => {
                let volume = self.rng.log_range(20.0, 300_000.0) as u32;
                let charge = if s.services & SV_DATA_PACK != 0 || self.rng.chance(0.7) {
                    0
                } else {
                    (volume / 100).clamp(1, 500)
                };
                Usage {
                    service: DATA,
                    dir: MO,
                    scope: LOCAL,
                    peer: 0,
                    duration: 0,
                    volume,
                    count: 0,
                    charge,
                    cell,
                    via: false,
                    force_after: None,
                }
            }
        };
        self.render(t, s, &Ev::Usage(u))
    }

    fn voice_charge(&mut self, scope: u8, dir: u8, duration: u32, via: bool) -> u32 {
        let minutes = duration.div_ceil(60).max(1);
        let per_min = match (scope, dir) {
            (LOCAL, MO) => {
                if self.rng.chance(0.5) {
                    0
                } else {
                    10
                }
            }
            (LONG_DISTANCE, MO) => {
                if via {
                    10
                } else {
                    30
                }
            }
            (ROAM_DOM, _) => {
                if via {
                    25
                } else {
                    40
                }
            }
            (INTERNATIONAL, MO) => 300,
            (ROAM_INTL, MO) => 199,
            (ROAM_INTL, MT) => 99,
            _ => 0,
        };
        per_min * minutes
    }

    /// People top up when they run low: the lowest balance of a few candidates gets the top-up.
    fn bg_topup(&mut self, t: Millis) -> String {
        let mut best: Option<(i32, Sub)> = None;
        for _ in 0..8 {
            // Uniform, not skewed: heavy talkers do not top up in proportion to their traffic.
            let i = self.rng.below(u64::from(self.m.n)) as u32;
            let s = self.sub(i);
            if !s.active() || self.flag(s.idx) & (F_NO_TOPUP | F_HOLD | F_BUSY) != 0 {
                continue;
            }
            let b = self.balance_mut(&s).map_or(0, |b| *b);
            if best.as_ref().is_none_or(|(bb, _)| b < *bb) {
                best = Some((b, s));
            }
            if best.is_some() && self.rng.chance(0.4) {
                break;
            }
        }
        let Some((_, s)) = best else {
            let s = self.draw(t);
            return self.bg_location(&s, t);
        };
        let amount = self.rng.pick(&[1000u32, 2000, 3000, 3000, 5000, 5000, 5000, 10_000, 10_000, 20_000], 5000);
        let mut channel = self.rng.weighted(&[10, 40, 10, 15, 10, 15]) as u8;
        let hour = self.m.hour_of(t);
        if channel == CH_STORE && !(9..21).contains(&hour) {
            channel = 1;
        }
        let store = self.rng.below(STORES.len() as u64) as u8;
        self.render(t, &s, &Ev::Topup { amount, channel, store })
    }

    fn ivr_session(&mut self, s: &Sub, t0: Millis) -> bool {
        self.serial += 1;
        let session = self.serial;
        let mut t = t0;
        let mut pushed = self.push(t, s.idx, Ev::Ivr { session, step: 0, node: [0; 3], depth: 0 }, 0);
        let mut node = [0u8; 3];
        let depth = self.rng.weighted(&[0, 35, 45, 20]);
        for d in 0..depth {
            node[d] =
                if d == 0 { self.rng.weighted(&[0, 30, 20, 20, 15, 15]) as u8 } else { self.rng.range(1, 5) as u8 };
            t += self.rng.range(3, 16) * SECOND;
            pushed |= self.push(t, s.idx, Ev::Ivr { session, step: 1, node, depth: d as u8 + 1 }, 0);
        }
        let agent = self.rng.chance(0.25);
        if agent {
            t += self.rng.range(2, 11) * SECOND;
            self.push(t, s.idx, Ev::Ivr { session, step: 2, node, depth: depth as u8 }, 0);
            t += self.rng.range(60, 600) * SECOND;
        } else {
            t += self.rng.range(5, 40) * SECOND;
        }
        self.push(t, s.idx, Ev::Ivr { session, step: 3, node: [0; 3], depth: 0 }, 0);
        pushed
    }

    fn bg_crm(&mut self, s: &Sub, t: Millis) -> String {
        let hour = self.m.hour_of(t);
        let office = (8..20).contains(&hour);
        let store_hours = (9..21).contains(&hour);
        let mut ev = self.rng.weighted(&[26, 22, 10, 12, 7, 6, 5, 5, 3, 2, 4]);
        if (ev == 3 && !store_hours) || (matches!(ev, 5 | 9 | 10) && !office) || (ev == 8 && s.churner) {
            ev = 0;
        }
        if ev == 3 {
            let store = self.rng.below(STORES.len() as u64) as u8;
            let txn = self.rng.weighted(&[20, 25, 15, 10, 30]) as u8;
            let payment = self.rng.weighted(&[25, 20, 25, 20, 10]) as u8;
            return self.render(t, s, &Ev::StoreVisit { store, txn, payment });
        }
        let day = self.m.day_of(t);
        let mut o = self.head("crm", t, s);
        let r = &mut self.rng;
        match ev {
            0 => {
                let first = r.chance(0.04);
                let delta = r.range(10, 500);
                let points = if first { delta } else { delta + r.range(100, 20_000) };
                let _ = write!(
                    o,
                    ",\"event\":\"points_changed\",\"attrs\":{{\"points\":{points},\"delta\":{delta},\"first\":{first}}}}}"
                );
            }
            1 => {
                let amount = r.pick(&[2000i32, 3000, 5000, 5000, 10_000, 20_000], 5000);
                let _ = write!(o, ",\"event\":\"payment_posted\",\"attrs\":{{\"amount_fen\":{amount}}}}}");
                if let Some(b) = self.balance_mut(s) {
                    *b = b.saturating_add(amount);
                }
            }
            2 => {
                self.serial += 1;
                let (item, amount) = self.rng.pick(
                    &[
                        ("data_pack_10g", 3000),
                        ("handset", 299_900),
                        ("broadband", 12_000),
                        ("video_vip", 1500),
                        ("music_club", 1000),
                    ],
                    ("data_pack_10g", 3000),
                );
                let _ = write!(
                    o,
                    ",\"event\":\"order_placed\",\"attrs\":{{\"order_id\":\"O{}\",\"item\":\"{item}\",\"amount_fen\":{amount}}}}}",
                    self.serial
                );
            }
            4 => {
                let points = r.range(500, 30_000);
                let exp = self.m.days_info.get(day).map_or("", |d| d.month_end.as_str());
                let _ = write!(
                    o,
                    ",\"event\":\"points_expiring\",\"attrs\":{{\"points\":{points},\"expires\":\"{exp}\"}}}}"
                );
            }
            5 => {
                self.serial += 1;
                let topic = self.rng.pick(&["billing", "network", "service", "data", "roaming"], "billing");
                let _ = write!(
                    o,
                    ",\"event\":\"complaint_closed\",\"attrs\":{{\"complaint_id\":\"K{}\",\"topic\":\"{topic}\"}}}}",
                    self.serial
                );
                // The pack calls back 4 hours later; the call centre reports how that went.
                let trigger = crate::contact::TriggerRef {
                    kind: "crm",
                    id: format!("e{:010}", self.emitted).into(),
                    ts: t - t.rem_euclid(SECOND),
                };
                let due = trigger.ts + 4 * 60 * MINUTE;
                let action = crate::contact::action_id(
                    "complaint_callback",
                    crate::util::Msisdn::parse(&s.msisdn.to_string()).unwrap_or(crate::util::Msisdn::from_raw(0)),
                    &trigger,
                    Some(due),
                );
                let action = u64::from_str_radix(action.strip_prefix('a').unwrap_or(&action), 16).unwrap_or(0);
                let status = self.rng.weighted(&[70, 20, 10]) as u8;
                let at = due + self.rng.range(2, 90) * MINUTE;
                self.push(at, s.idx, Ev::CallResult { action, status }, 0);
                return o;
            }
            6 => {
                let exp = self.m.days_info.get(day).map_or("", |d| d.plus30.as_str());
                let _ = write!(o, ",\"event\":\"contract_expiring\",\"attrs\":{{\"expires\":\"{exp}\"}}}}");
            }
            7 => {
                let code = r.pick(&["PDP_REJECT", "AUTH_FAIL", "APN_ERROR"], "PDP_REJECT");
                let cell = self.cell_for(s, t);
                let _ = write!(
                    o,
                    ",\"event\":\"service_failure\",\"attrs\":{{\"service\":\"data\",\"code\":\"{code}\",\"cell\":\"{}\"}}}}",
                    self.m.world.id(cell)
                );
            }
            8 => {
                let up = s.tier > HIGH && (s.tier == NEG || r.chance(0.5));
                let to = if up { s.tier - 1 } else { (s.tier + 1).min(NEG) };
                let _ = write!(
                    o,
                    ",\"event\":\"tier_changed\",\"attrs\":{{\"from\":\"{}\",\"to\":\"{}\"}}}}",
                    TIERS[s.tier as usize % 4],
                    TIERS[to as usize % 4]
                );
            }
            10 => {
                // Credited by the billing system: refunds, promotions, compensation for outages.
                let amount = r.pick(&[500i32, 1000, 1000, 2000, 3000, 5000], 1000);
                let reason = r.pick(&["话费返还", "话费返还", "套餐优惠", "故障补偿", "积分兑换"], "话费返还");
                let _ = write!(
                    o,
                    ",\"event\":\"discount_credited\",\"attrs\":{{\"amount_fen\":{amount},\"reason\":\"{reason}\"}}}}"
                );
                if let Some(b) = self.balance_mut(s) {
                    *b = b.saturating_add(amount);
                }
            }
            _ => {
                let reason = r.pick(&["relocation", "price", "coverage", "switching", "other"], "other");
                let channel = r.pick(&["store", "hotline", "online"], "hotline");
                let _ = write!(
                    o,
                    ",\"event\":\"disconnect_requested\",\"attrs\":{{\"reason\":\"{reason}\",\"channel\":\"{channel}\"}}}}"
                );
            }
        }
        o
    }

    fn bg_profile(&mut self, s: &Sub, t: Millis) -> String {
        let what = self.rng.weighted(&[45, 15, 12, 5, 8, 10, 5]);
        let mut o = self.head("profile", t, s);
        o.push_str(",\"set\":{");
        match what {
            0 | 1 => {
                let bit = 1u8 << self.rng.below(SERVICES.len() as u64);
                let services = if what == 0 { s.services | bit } else { s.services & !bit };
                o.push_str("\"services\":");
                push_str_list(&mut o, &SERVICES, services);
            }
            2 => o.push_str("\"dnd\":true"),
            3 => o.push_str("\"dnd\":[\"sms\"]"),
            4 => o.push_str("\"dnd\":false"),
            5 => {
                let to = if s.tier == HIGH { 1 } else { s.tier - 1 };
                let _ = write!(o, "\"tier\":\"{}\"", TIERS[to as usize % 4]);
            }
            _ => {
                let bit = 1u8 << self.rng.below(PREFS.len() as u64);
                o.push_str("\"prefs\":");
                push_str_list(&mut o, &PREFS, s.prefs | bit);
            }
        }
        o.push_str("}}");
        o
    }

    // --- episodes -----------------------------------------------------------------------------

    /// Starts an episode of the kind at t0; `day` and `idx` are the clock's (the churn clock walks
    /// its churners by index).
    fn episode(&mut self, ep: Ep, t0: Millis, day: u32, idx: u32) {
        match ep {
            Ep::Rail => self.ep_travel(t0, false),
            Ep::Airport => self.ep_travel(t0, true),
            Ep::LongDistance => self.ep_long_distance(t0),
            Ep::Concert => self.ep_concert(t0),
            Ep::IvrTopic3 => self.ep_ivr_topic3(t0),
            Ep::LowBalance => self.ep_low_balance(t0),
            Ep::StoreCash => self.ep_store_cash(t0),
            Ep::Roaming => self.ep_roaming(t0),
            Ep::WeatherTrip => self.ep_weather_trip(t0),
            Ep::Churn => self.ep_churn(t0, day, idx),
        }
    }

    fn local_usage(&mut self, cell: u32, charge: u32, force_after: Option<i32>) -> Usage {
        if self.rng.chance(0.5) {
            let duration = self.rng.range(40, 400) as u32;
            Usage {
                service: VOICE,
                dir: MO,
                scope: LOCAL,
                peer: self.peer(true),
                duration,
                volume: 0,
                count: 0,
                charge,
                cell,
                via: false,
                force_after,
            }
        } else {
            let volume = self.rng.range(2_000, 60_000) as u32;
            Usage {
                service: DATA,
                dir: MO,
                scope: LOCAL,
                peer: 0,
                duration: 0,
                volume,
                count: 0,
                charge,
                cell,
                via: false,
                force_after,
            }
        }
    }

    /// A high-value traveller without call notification, low on credit, reaches a station or the
    /// airport from an ordinary cell.
    fn ep_travel(&mut self, t0: Millis, airport: bool) {
        let s = self.pick(|s| s.tier == HIGH && s.services & SV_CALL_NOTIFY == 0 && s.active());
        let i = s.idx;
        self.set_flag(i, F_HOLD | F_BUSY);
        let from = self.ordinary_cell(&s);
        let trig = if self.rng.chance(0.5) { HANDOVER } else { PERIODIC };
        self.push(t0, i, Ev::Loc { cell: from, trigger: trig }, 0);
        let t1 = t0 + self.rng.range(3, 15) * MINUTE;
        let after = self.rng.range(150, 950) as i32;
        let charge = self.rng.range(10, 80) as u32;
        let u = self.local_usage(from, charge, Some(after));
        self.push(t1, i, Ev::Usage(u), 0);
        let hub = if airport {
            self.m.world.airport.clone()
        } else {
            let k = self.rng.below(self.m.world.stations.len() as u64) as usize;
            self.m.world.stations.get(k).cloned().unwrap_or_default()
        };
        let cell = self.rng.pick(&hub, from);
        let t2 = t1 + self.rng.range(15, 40) * MINUTE;
        let trigger = if self.rng.chance(0.6) { HANDOVER } else { ATTACH };
        self.push(t2, i, Ev::Loc { cell, trigger }, F_HOLD);
        let t3 = t2 + self.rng.range(8, 20) * MINUTE;
        let next = self.rng.pick(&hub, cell);
        let trigger = if next == cell { PERIODIC } else { HANDOVER };
        let leaves = !airport && self.rng.chance(0.6);
        self.push(t3, i, Ev::Loc { cell: next, trigger }, if leaves { 0 } else { F_BUSY });
        if leaves {
            // Out of town until the return train; the background stays away meanwhile.
            let away = self.rng.pick(&self.m.world.domestic, from);
            let t = t3 + self.rng.range(40, 120) * MINUTE;
            self.push(t, i, Ev::Loc { cell: away, trigger: ATTACH }, 0);
            let back = t + self.rng.range(20, 80) * HOUR;
            self.periodic_until(i, away, t, back, (60, 180), 30);
            self.push(back, i, Ev::Loc { cell: next, trigger: ATTACH }, F_BUSY);
        }
    }

    /// Three to five long-distance (or domestic roaming) calls through the day by someone who
    /// does not use 12593.
    fn ep_long_distance(&mut self, t0: Millis) {
        let has_unused = self.rng.chance(0.25);
        let s = if has_unused {
            self.pick(|s| s.active() && s.services & SV_12593 != 0 && s.ignores_12593)
        } else {
            self.pick(|s| s.active() && s.services & SV_12593 == 0)
        };
        let roaming = self.rng.chance(0.3);
        let scope = if roaming { ROAM_DOM } else { LONG_DISTANCE };
        let cell = if roaming { self.rng.pick(&self.m.world.domestic, s.work) } else { s.work };
        let calls = self.rng.range(3, 6);
        let mut t = t0;
        for _ in 0..calls {
            let duration = self.rng.log_range(60.0, 900.0) as u32;
            let charge = self.voice_charge(scope, MO, duration, false);
            let prefix = self.rng.pick(&PEER_PREFIXES, 130);
            let peer = prefix * 100_000_000 + self.rng.below(100_000_000);
            let u = Usage {
                service: VOICE,
                dir: MO,
                scope,
                peer,
                duration,
                volume: 0,
                count: 0,
                charge,
                cell,
                via: false,
                force_after: None,
            };
            self.push(t, s.idx, Ev::Usage(u), 0);
            t += self.rng.range(20, 80) * MINUTE;
        }
    }

    /// A fan (mostly music lovers outside the club) arrives at the venue before the show and
    /// stays through it, with periodic updates and the odd handover between venue cells.
    fn ep_concert(&mut self, t0: Millis) {
        let s = if self.rng.chance(0.8) {
            self.pick(|s| s.active() && s.prefs & PF_MUSIC != 0 && s.services & SV_MUSIC_CLUB == 0)
        } else {
            self.pick(Sub::active)
        };
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let before = self.rng.pick(&self.m.world.residential, s.home);
        self.push(t0, i, Ev::Loc { cell: before, trigger: HANDOVER }, 0);
        let arrive = t0 + self.rng.range(10, 16) * MINUTE;
        let venue = self.m.world.venue.clone();
        let mut cell = self.rng.pick(&venue, before);
        let trigger = if self.rng.chance(0.4) { ATTACH } else { HANDOVER };
        self.push(arrive, i, Ev::Loc { cell, trigger }, 0);
        let stay = if self.rng.chance(0.85) { self.rng.range(80, 200) } else { self.rng.range(25, 55) };
        let leave = arrive + stay * MINUTE;
        let upload = arrive + self.rng.range(20, 60) * MINUTE;
        if upload < leave {
            let volume = self.rng.range(5_000, 80_000) as u32;
            let u = Usage {
                service: DATA,
                dir: MO,
                scope: LOCAL,
                peer: 0,
                duration: 0,
                volume,
                count: 0,
                charge: 0,
                cell,
                via: false,
                force_after: None,
            };
            self.push(upload, i, Ev::Usage(u), 0);
        }
        let mut t = arrive;
        loop {
            let next = t + self.rng.range(10, 21) * MINUTE;
            if next >= leave - 2 * MINUTE {
                break;
            }
            t = next;
            let trigger = if self.rng.chance(0.2) {
                cell = self.rng.pick(&venue, cell);
                HANDOVER
            } else {
                PERIODIC
            };
            self.push(t, i, Ev::Loc { cell, trigger }, 0);
        }
        if t < leave - 6 * MINUTE {
            self.push(leave - 2 * MINUTE, i, Ev::Loc { cell, trigger: PERIODIC }, 0);
        }
        let after = self.rng.pick(&self.m.world.residential, s.home);
        self.push(leave, i, Ev::Loc { cell: after, trigger: HANDOVER }, F_BUSY);
    }

    /// Callers going straight to menu 3 and an agent within a minute, some repeatedly in a day;
    /// some give up before the agent.
    fn ep_ivr_topic3(&mut self, t0: Millis) {
        let s = self.pick(Sub::active);
        let sessions = 1 + usize::from(self.rng.chance(0.45)) + usize::from(self.rng.chance(0.2));
        let agent = sessions > 1 || self.rng.chance(0.7);
        let mut t = t0;
        for _ in 0..sessions {
            self.serial += 1;
            let session = self.serial;
            let leaf = self.rng.range(1, 3) as u8;
            self.push(t, s.idx, Ev::Ivr { session, step: 0, node: [0; 3], depth: 0 }, 0);
            t += self.rng.range(3, 9) * SECOND;
            self.push(t, s.idx, Ev::Ivr { session, step: 1, node: [3, 0, 0], depth: 1 }, 0);
            t += self.rng.range(3, 11) * SECOND;
            self.push(t, s.idx, Ev::Ivr { session, step: 1, node: [3, leaf, 0], depth: 2 }, 0);
            if agent {
                t += self.rng.range(3, 13) * SECOND;
                self.push(t, s.idx, Ev::Ivr { session, step: 2, node: [3, leaf, 0], depth: 2 }, 0);
                t += self.rng.range(60, 480) * SECOND;
            } else {
                t += self.rng.range(5, 30) * SECOND;
            }
            self.push(t, s.idx, Ev::Ivr { session, step: 3, node: [0; 3], depth: 0 }, 0);
            t += self.rng.range(40, 240) * MINUTE;
        }
    }

    /// Balance falls under 5 CNY; half never top up in the window, half do a few hours later.
    fn ep_low_balance(&mut self, t0: Millis) {
        let s = self.pick(Sub::active);
        let never = self.rng.chance(0.5);
        self.set_flag(s.idx, if never { F_NO_TOPUP } else { F_HOLD });
        let after = self.rng.range(30, 480) as i32;
        let charge = self.rng.range(20, 150) as u32;
        let cell = self.cell_for(&s, t0);
        let u = self.local_usage(cell, charge, Some(after));
        self.push(t0, s.idx, Ev::Usage(u), 0);
        if !never {
            let t1 = t0 + self.rng.range(60, 360) * MINUTE;
            let amount = self.rng.pick(&[3000u32, 5000, 5000, 10_000], 5000);
            let channel = self.rng.pick(&[0u8, 1, 3, 4], 1);
            self.push(t1, s.idx, Ev::Topup { amount, channel, store: 0 }, F_HOLD);
        }
    }

    /// A low-value subscriber walks into a store and pays cash.
    fn ep_store_cash(&mut self, t0: Millis) {
        let s = self.pick(|s| s.active() && (s.tier == SUBT || s.tier == NEG));
        let k = self.rng.below(STORES.len() as u64) as usize;
        let cell = self.m.world.store_cells.get(k).copied().unwrap_or(s.home);
        self.set_flag(s.idx, F_BUSY);
        self.push(t0, s.idx, Ev::Loc { cell, trigger: ATTACH }, 0);
        let t1 = t0 + self.rng.range(5, 25) * MINUTE;
        let txn = self.rng.weighted(&[40, 40, 10, 10, 0]) as u8;
        self.push(t1, s.idx, Ev::StoreVisit { store: k as u8, txn, payment: CASH }, 0);
        if self.rng.chance(0.5) {
            let amount = self.rng.pick(&[2000u32, 3000, 5000, 10_000], 5000);
            let at = t1 + self.rng.range(1, 4) * MINUTE;
            self.push(at, s.idx, Ev::Topup { amount, channel: CH_STORE, store: k as u8 }, 0);
        }
        let out = self.ordinary_cell(&s);
        let at = t1 + self.rng.range(20, 60) * MINUTE;
        self.push(at, s.idx, Ev::Loc { cell: out, trigger: HANDOVER }, F_BUSY);
    }

    /// A trip abroad: airport in Beijing, attach on a visited network with its country, roaming
    /// usage and periodic updates, and the return if it falls inside the window.
    fn ep_roaming(&mut self, t0: Millis) {
        let s = if self.rng.chance(0.6) {
            self.pick(|s| s.active() && s.prefs & PF_TRAVEL != 0)
        } else {
            self.pick(Sub::active)
        };
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let home_airport = self.rng.pick(&self.m.world.airport, s.home);
        self.push(t0, i, Ev::Loc { cell: home_airport, trigger: ATTACH }, 0);
        let u = self.local_usage(home_airport, 0, None);
        let at = t0 + self.rng.range(2, 30) * MINUTE;
        self.push(at, i, Ev::Usage(u), 0);
        let k = self.rng.below(self.m.world.foreign.len() as u64) as usize;
        let cells = self.m.world.foreign.get(k).cloned().unwrap_or_default();
        let (Some(&arrival), Some(&city)) = (cells.first(), cells.last()) else {
            return;
        };
        let t1 = t0 + self.rng.range(180, 300) * MINUTE;
        self.push(t1, i, Ev::Loc { cell: arrival, trigger: ATTACH }, 0);
        let volume = self.rng.range(500, 20_000) as u32;
        let data = Usage {
            service: DATA,
            dir: MO,
            scope: ROAM_INTL,
            peer: 0,
            duration: 0,
            volume,
            count: 0,
            charge: 2500,
            cell: arrival,
            via: false,
            force_after: None,
        };
        let at = t1 + self.rng.range(5, 30) * MINUTE;
        self.push(at, i, Ev::Usage(data), 0);
        let duration = self.rng.range(60, 600) as u32;
        let charge = self.voice_charge(ROAM_INTL, MT, duration, false);
        let call = Usage {
            service: VOICE,
            dir: MT,
            scope: ROAM_INTL,
            peer: self.peer(true),
            duration,
            volume: 0,
            count: 0,
            charge,
            cell: city,
            via: false,
            force_after: None,
        };
        let at = t1 + self.rng.range(40, 180) * MINUTE;
        self.push(at, i, Ev::Usage(call), 0);
        let back = t1 + self.rng.range(20, 100) * HOUR;
        self.periodic_until(i, city, t1 + 30 * MINUTE, back, (60, 150), 40);
        self.push(back, i, Ev::Loc { cell: home_airport, trigger: ATTACH }, F_BUSY);
    }

    /// While a weather alert is on, someone without the weather service goes from Beijing to the
    /// alert city in the daytime, stays a few hours or a night or so, and comes back; the
    /// background leaves them alone meanwhile.
    fn ep_weather_trip(&mut self, t0: Millis) {
        let cells = self.m.world.alert_city.clone();
        if cells.is_empty() || !self.m.alert_on(t0) {
            return;
        }
        let s = self.pick(|s| s.active() && s.services & SV_WEATHER == 0);
        let i = s.idx;
        self.set_flag(i, F_BUSY);
        let from = self.ordinary_cell(&s);
        let trig = if self.rng.chance(0.5) { HANDOVER } else { PERIODIC };
        self.push(t0, i, Ev::Loc { cell: from, trigger: trig }, 0);
        // By train or car: 40 minutes to two hours, arriving in the daytime with the alert still on.
        let mut t = t0 + self.rng.range(40, 120) * MINUTE;
        let mut cell = self.rng.pick(&cells, from);
        let trigger = if self.rng.chance(0.6) { ATTACH } else { HANDOVER };
        self.push(t, i, Ev::Loc { cell, trigger }, 0);
        let volume = self.rng.range(1_000, 30_000) as u32;
        let u = Usage {
            service: DATA,
            dir: MO,
            scope: ROAM_DOM,
            peer: 0,
            duration: 0,
            volume,
            count: 0,
            charge: 0,
            cell,
            via: false,
            force_after: None,
        };
        let at = t + self.rng.range(2, 20) * MINUTE;
        self.push(at, i, Ev::Usage(u), 0);
        // A day trip, or a night or so away.
        let stay = if self.rng.chance(0.5) { self.rng.range(3 * 60, 8 * 60) } else { self.rng.range(14 * 60, 30 * 60) };
        let back = t + stay * MINUTE;
        for _ in 0..20 {
            t += self.rng.range(50, 180) * MINUTE;
            if t >= back - 10 * MINUTE {
                break;
            }
            let trigger = if self.rng.chance(0.25) {
                cell = self.rng.pick(&cells, cell);
                HANDOVER
            } else {
                PERIODIC
            };
            self.push(t, i, Ev::Loc { cell, trigger }, 0);
        }
        self.push(back, i, Ev::Loc { cell: s.home, trigger: ATTACH }, F_BUSY);
    }

    /// One line of a churner's day: charged usage (local calls and data without a pack, 1 to 5
    /// CNY each) until their stop day; afterwards nearly nothing, the odd 10-fen SMS.
    fn ep_churn(&mut self, t0: Millis, day: u32, idx: u32) {
        let k = self.m.churners.len();
        if k == 0 {
            return;
        }
        let Some(&i) = self.m.churners.get(idx as usize % k) else {
            return;
        };
        let s = self.sub(i);
        let cell = self.cell_for(&s, t0);
        if day < self.m.churn_stop(i) {
            let u = if self.rng.chance(0.4) {
                let duration = self.rng.range(10 * 60, 45 * 60) as u32;
                Usage {
                    service: VOICE,
                    dir: MO,
                    scope: LOCAL,
                    peer: self.peer(true),
                    duration,
                    volume: 0,
                    count: 0,
                    charge: duration.div_ceil(60) * 10,
                    cell,
                    via: false,
                    force_after: None,
                }
            } else {
                let volume = self.rng.range(10_000, 50_000) as u32;
                Usage {
                    service: DATA,
                    dir: MO,
                    scope: LOCAL,
                    peer: 0,
                    duration: 0,
                    volume,
                    count: 0,
                    charge: volume / 100,
                    cell,
                    via: false,
                    force_after: None,
                }
            };
            self.push(t0, i, Ev::Usage(u), 0);
        } else if (idx as usize) < k && self.rng.chance(0.1) {
            let u = Usage {
                service: SMS,
                dir: MO,
                scope: LOCAL,
                peer: self.peer(true),
                duration: 0,
                volume: 0,
                count: 1,
                charge: 10,
                cell,
                via: false,
                force_after: None,
            };
            self.push(t0, i, Ev::Usage(u), 0);
        }
    }

    // --- rendering ----------------------------------------------------------------------------

    fn head(&mut self, kind: &str, t: Millis, s: &Sub) -> String {
        self.emitted += 1;
        let sec = t.div_euclid(SECOND);
        if sec != self.ts_sec {
            self.ts_sec = sec;
            self.ts_str = format_ts(t, self.m.offset);
        }
        let mut o = String::with_capacity(256);
        let _ = write!(
            o,
            "{{\"kind\":\"{kind}\",\"id\":\"e{:010}\",\"ts\":\"{}\",\"msisdn\":\"{}\"",
            self.emitted, self.ts_str, s.msisdn
        );
        o
    }

    fn render(&mut self, t: Millis, s: &Sub, ev: &Ev) -> String {
        match *ev {
            Ev::Loc { cell, trigger } => {
                let mut o = self.head("location", t, s);
                let c = self.m.world.cells.get(cell as usize);
                let _ = write!(
                    o,
                    ",\"cell\":\"{}\",\"trigger\":\"{}\"",
                    c.map_or("", |c| c.id.as_str()),
                    TRIGGERS[trigger as usize % 4]
                );
                if let Some(country) = c.and_then(|c| c.country) {
                    let _ = write!(o, ",\"country\":\"{country}\"");
                }
                o.push('}');
                o
            }
            Ev::Usage(u) => {
                // A prepaid account cannot pay more than it holds: the charge shown is what was taken.
                let (charge, balance) = match self.balance_mut(s) {
                    Some(b) => match u.force_after {
                        Some(after) => {
                            *b = after;
                            (u.charge, after)
                        }
                        None => {
                            let taken = u.charge.min((*b).max(0) as u32);
                            *b -= taken as i32;
                            (taken, *b)
                        }
                    },
                    None => (0, 0),
                };
                let mut o = self.head("usage", t, s);
                let _ = write!(
                    o,
                    ",\"service\":\"{}\",\"direction\":\"{}\",\"scope\":\"{}\"",
                    SERVICE_KINDS[u.service as usize % 4],
                    DIRS[u.dir as usize % 2],
                    SCOPES[u.scope as usize % 5]
                );
                if u.service != DATA {
                    let _ = write!(o, ",\"peer\":\"{}\"", u.peer);
                }
                match u.service {
                    VOICE => {
                        let _ = write!(o, ",\"duration_s\":{}", u.duration);
                    }
                    DATA => {
                        let _ = write!(o, ",\"volume_kb\":{}", u.volume);
                    }
                    _ => {
                        let _ = write!(o, ",\"count\":{}", u.count);
                    }
                }
                let _ = write!(
                    o,
                    ",\"charge_fen\":{charge},\"balance_fen\":{balance},\"cell\":\"{}\"",
                    self.m.world.id(u.cell)
                );
                if u.via {
                    o.push_str(",\"via\":\"12593\"");
                }
                o.push('}');
                o
            }
            Ev::Topup { amount, channel, store } => {
                let balance = match self.balance_mut(s) {
                    Some(b) => {
                        *b = b.saturating_add(amount as i32);
                        *b
                    }
                    None => amount as i32,
                };
                let mut o = self.head("topup", t, s);
                let _ = write!(
                    o,
                    ",\"amount_fen\":{amount},\"balance_fen\":{balance},\"channel\":\"{}\"",
                    TOPUP_CHANNELS[channel as usize % 6]
                );
                if channel == CH_STORE {
                    let _ = write!(o, ",\"store\":\"{}\"", store_id(store as usize));
                }
                o.push('}');
                o
            }
            Ev::Ivr { session, step, node, depth } => {
                let mut o = self.head("ivr", t, s);
                let _ = write!(o, ",\"session\":\"s{session}\",\"step\":\"{}\"", IVR_STEPS[step as usize % 4]);
                if depth > 0 {
                    o.push_str(",\"node\":\"");
                    for (k, d) in node.iter().take(depth as usize).enumerate() {
                        if k > 0 {
                            o.push('-');
                        }
                        let _ = write!(o, "{d}");
                    }
                    o.push('"');
                }
                o.push_str(",\"hotline\":\"10086\"}");
                o
            }
            Ev::StoreVisit { store, txn, payment } => {
                let mut o = self.head("crm", t, s);
                let _ = write!(
                    o,
                    ",\"event\":\"store_visit\",\"attrs\":{{\"store\":\"{}\",\"txn\":\"{}\",\"payment\":\"{}\"}}}}",
                    store_id(store as usize),
                    STORE_TXNS[txn as usize % 5],
                    PAYMENTS[payment as usize % 5]
                );
                o
            }
            Ev::CallResult { action, status } => {
                let mut o = self.head("outcome", t, s);
                let _ = write!(
                    o,
                    ",\"action_id\":\"a{action:016x}\",\"channel\":\"call\",\"status\":\"{}\",\"rule\":\"complaint_callback\",\"campaign\":\"care_complaint\"}}",
                    ["answered", "no_answer", "busy"][status as usize % 3]
                );
                o
            }
        }
    }
}

impl Iterator for Events {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.step()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.m.events.saturating_sub(self.emitted);
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn follow_stamps_every_line_with_the_time_it_is_written() {
        let o = GenOptions { subscribers: 50, events: 300, ..GenOptions::default() };
        let before = chrono::Utc::now().timestamp_millis();
        let mut out = Vec::new();
        assert_eq!(follow(&o, 100_000, &mut out).expect("written"), 300);
        let after = chrono::Utc::now().timestamp_millis();
        let text = String::from_utf8(out).expect("utf-8");
        let originals: Vec<String> = events(&o).collect();
        assert_eq!(text.lines().count(), 300);
        for (line, orig) in text.lines().zip(&originals) {
            let v: serde_json::Value = serde_json::from_str(line).expect("json");
            let ts = crate::time::parse_ts(v["ts"].as_str().expect("ts")).expect("rfc 3339");
            assert!(before <= ts && ts <= after, "{ts} outside {before}..{after}");
            // Everything but the time is the generated line.
            let mut o: serde_json::Value = serde_json::from_str(orig).expect("json");
            o["ts"] = v["ts"].clone();
            assert_eq!(v, o);
        }
    }

    use super::*;
    use serde_json::{Map, Value};
    use std::collections::{HashMap, HashSet};

    fn small() -> GenOptions {
        GenOptions { subscribers: 500, events: 20_000, ..GenOptions::default() }
    }

    fn obj(line: &str) -> Map<String, Value> {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object: {line} ({other:?})"),
        }
    }

    fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
        m.get(k).and_then(Value::as_str).unwrap_or("")
    }

    fn num(m: &Map<String, Value>, k: &str) -> i64 {
        m.get(k).and_then(Value::as_i64).unwrap_or(i64::MIN)
    }

    fn has_str(m: &Map<String, Value>, list: &str, item: &str) -> bool {
        m.get(list).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v.as_str() == Some(item)))
    }

    fn ms(ts: &str) -> i64 {
        crate::time::parse_ts(ts).expect("ts parses")
    }

    /// Local "HH:MM" of an RFC 3339 string written in the local offset.
    fn hm(ts: &str) -> &str {
        &ts[11..16]
    }

    #[test]
    fn default_start_is_local_midnight() {
        let o = GenOptions::default();
        let off = chrono::FixedOffset::east_opt(o.offset_secs).expect("offset");
        assert_eq!(format_ts(o.start, off), "2026-11-24T00:00:00+08:00");
    }

    #[test]
    fn same_options_same_bytes() {
        let a: Vec<String> = events(&small()).collect();
        let b: Vec<String> = events(&small()).collect();
        assert_eq!(a, b);
        let (ra, rb) = (reference(&small()), reference(&small()));
        assert_eq!(ra.subscribers, rb.subscribers);
        assert_eq!(ra.cells, rb.cells);
        assert_eq!(ra.calendar, rb.calendar);
        assert_eq!(ra.stores, rb.stores);
        assert_eq!(ra.countries, rb.countries);
        let c: Vec<String> = events(&GenOptions { seed: 8, ..small() }).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn exact_event_count() {
        for (subs, n, days) in
            [(50, 1000, 1), (50, 0, 1), (50, 7, 2), (1000, 30_000, 3), (10_000, 200_000, 1), (3000, 50_000, 0)]
        {
            let o = GenOptions { subscribers: subs, events: n, days, ..GenOptions::default() };
            assert_eq!(events(&o).count(), n, "subs {subs} events {n} days {days}");
        }
    }

    #[test]
    fn events_well_formed_and_ordered() {
        for o in [GenOptions::default(), GenOptions { subscribers: 50, events: 5000, days: 3, ..GenOptions::default() }]
        {
            let end = o.start + i64::from(o.days.max(1)) * DAY;
            let mut last = i64::MIN;
            let mut ids = HashSet::new();
            let mut kinds: HashMap<String, usize> = HashMap::new();
            let mut bytes = 0usize;
            for line in events(&o) {
                bytes += line.len();
                let m = obj(&line);
                let t = ms(s(&m, "ts"));
                assert!(t >= last, "out of order: {line}");
                assert!(t >= o.start && t < end, "outside window: {line}");
                last = t;
                assert!(ids.insert(s(&m, "id").to_string()), "duplicate id: {line}");
                let msisdn = s(&m, "msisdn");
                assert!(msisdn.len() == 11 && msisdn.bytes().all(|b| b.is_ascii_digit()), "{line}");
                let kind = s(&m, "kind").to_string();
                let need: &[&str] = match kind.as_str() {
                    "usage" => &["service", "direction", "scope", "charge_fen", "balance_fen", "cell"],
                    "topup" => &["amount_fen", "balance_fen", "channel"],
                    "ivr" => &["session", "step", "hotline"],
                    "location" => &["cell", "trigger"],
                    "crm" => &["event", "attrs"],
                    "profile" => &["set"],
                    "outcome" => &["action_id", "channel", "status", "rule"],
                    other => panic!("unknown kind {other}: {line}"),
                };
                for f in need {
                    assert!(m.contains_key(*f), "missing {f}: {line}");
                }
                match kind.as_str() {
                    "usage" => {
                        let svc = s(&m, "service");
                        assert!(["voice", "sms", "mms", "data"].contains(&svc));
                        assert_eq!(m.contains_key("duration_s"), svc == "voice", "{line}");
                        assert_eq!(m.contains_key("volume_kb"), svc == "data", "{line}");
                        assert_eq!(m.contains_key("count"), svc == "sms" || svc == "mms", "{line}");
                        assert!(num(&m, "balance_fen") >= 0, "{line}");
                    }
                    "topup" => {
                        assert_eq!(m.contains_key("store"), s(&m, "channel") == "store", "{line}");
                    }
                    "crm" => assert!(m.get("attrs").is_some_and(Value::is_object), "{line}"),
                    "profile" => assert!(m.get("set").is_some_and(Value::is_object), "{line}"),
                    _ => {}
                }
                *kinds.entry(kind).or_default() += 1;
            }
            if o.events >= 100_000 {
                let share = |k: &str| kinds.get(k).copied().unwrap_or(0) as f64 / o.events as f64;
                assert!((0.33..0.47).contains(&share("location")), "{kinds:?}");
                assert!((0.38..0.52).contains(&share("usage")), "{kinds:?}");
                for k in ["topup", "ivr", "crm"] {
                    assert!((0.025..0.08).contains(&share(k)), "{k} {kinds:?}");
                }
                assert!((0.003..0.02).contains(&share("profile")), "{kinds:?}");
                let avg = bytes / o.events;
                assert!((120..260).contains(&avg), "average line {avg} bytes");
            }
        }
    }

    #[test]
    fn diurnal_shape() {
        let mut per_hour = [0usize; 24];
        for line in events(&GenOptions::default()) {
            let m = obj(&line);
            let h: usize = s(&m, "ts")[11..13].parse().unwrap_or(0);
            per_hour[h] += 1;
        }
        let night: usize = per_hour[1..6].iter().sum();
        assert!(night * 5 < per_hour[10] * 4, "{per_hour:?}");
        assert!(per_hour[20] > per_hour[4] * 8, "{per_hour:?}");
    }

    #[test]
    fn reference_well_formed() {
        let o = GenOptions { days: 2, ..GenOptions::default() };
        let r = reference(&o);
        assert_eq!(r.subscribers.len(), o.subscribers);
        let mut msisdns = HashSet::new();
        let mut tiers: HashMap<String, usize> = HashMap::new();
        let mut birthdays = HashMap::<String, usize>::new();
        for line in &r.subscribers {
            let m = obj(line);
            for f in [
                "msisdn",
                "customer_id",
                "account_id",
                "brand",
                "tier",
                "arpu_fen",
                "join_date",
                "birthday",
                "corporate",
                "foreign",
                "employee",
                "services",
                "dnd",
                "status",
                "prefs",
                "channel_pref",
            ] {
                assert!(m.contains_key(f), "missing {f}: {line}");
            }
            let msisdn = s(&m, "msisdn");
            assert!(
                msisdn.len() == 11
                    && msisdn.starts_with('1')
                    && matches!(&msisdn[1..2], "3" | "4" | "5" | "7" | "8" | "9"),
                "{line}"
            );
            assert!(msisdns.insert(msisdn.to_string()), "duplicate msisdn {msisdn}");
            if s(&m, "tier") == "high" {
                assert!(num(&m, "arpu_fen") >= 5000, "{line}");
            }
            *tiers.entry(s(&m, "tier").to_string()).or_default() += 1;
            *birthdays.entry(s(&m, "birthday").to_string()).or_default() += 1;
        }
        let high = tiers.get("high").copied().unwrap_or(0);
        assert!((700..1300).contains(&high), "{tiers:?}");
        assert!(birthdays.get("11-24").copied().unwrap_or(0) >= 5);
        assert!(birthdays.get("11-25").copied().unwrap_or(0) >= 5);
        // msisdns stay unique at a million subscribers (checked on the number function alone).
        let m = Model::new(&GenOptions { subscribers: 1_000_000, ..GenOptions::default() });
        let mut seen = HashSet::new();
        for i in 0..1_000_000 {
            let x = m.msisdn(i);
            assert!((13_000_000_000..20_000_000_000).contains(&x));
            assert!(seen.insert(x));
        }

        let mut ids = HashSet::new();
        let mut tags: HashMap<String, usize> = HashMap::new();
        for line in &r.cells {
            let m = obj(line);
            assert!(ids.insert(s(&m, "id").to_string()), "duplicate cell {line}");
            assert!(m.get("lat").is_some_and(Value::is_f64) && m.get("lon").is_some_and(Value::is_f64), "{line}");
            for t in m.get("tags").and_then(Value::as_array).into_iter().flatten() {
                *tags.entry(t.as_str().unwrap_or("").to_string()).or_default() += 1;
            }
        }
        assert!((200..=5100).contains(&r.cells.len()));
        assert!(tags.get("railway_station").copied().unwrap_or(0) >= 6);
        assert!(tags.get("airport").copied().unwrap_or(0) >= 1);
        assert_eq!(tags.get("venue:wukesong").copied(), Some(3));
        assert_eq!(tags.get("store:S001").copied(), Some(1));
        assert!((10..=20).contains(&r.stores.len()));
        for line in &r.stores {
            let m = obj(line);
            assert!(["id", "name", "address", "lat", "lon"].iter().all(|f| m.contains_key(*f)), "{line}");
        }
        let concerts: Vec<_> = r.calendar.iter().map(|l| obj(l)).filter(|m| s(m, "kind") == "concert").collect();
        assert_eq!(concerts.len(), 2);
        assert_eq!(s(&concerts[0], "start"), "2026-11-24T19:30:00+08:00");
        assert_eq!(s(&concerts[1], "end"), "2026-11-25T22:30:00+08:00");
        assert!(r.calendar.iter().any(|l| l.contains("\"festival\"")));
    }

    #[test]
    fn episodes_occur_in_default_run() {
        let o = GenOptions::default();
        let r = reference(&o);
        let subs: HashMap<String, Map<String, Value>> =
            r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
        let cell_tags: HashMap<String, Vec<String>> = r
            .cells
            .iter()
            .map(|l| obj(l))
            .map(|m| {
                let tags = m
                    .get("tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect();
                (s(&m, "id").to_string(), tags)
            })
            .collect();
        let tagged = |cell: &str, tag: &str| cell_tags.get(cell).is_some_and(|t| t.iter().any(|x| x == tag));
        let ordinary = |cell: &str| tagged(cell, "residential") || tagged(cell, "business");
        let lines: Vec<Map<String, Value>> = events(&o).map(|l| obj(&l)).collect();

        let mut last_balance: HashMap<String, i64> = HashMap::new();
        let mut last_cell: HashMap<String, String> = HashMap::new();
        let (mut station, mut airport) = (0, 0);
        let mut ld: HashMap<String, usize> = HashMap::new();
        let mut venue: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut sessions: HashMap<String, Vec<(i64, String, String, String)>> = HashMap::new();
        let mut low: HashMap<String, i64> = HashMap::new();
        let mut topups: HashMap<String, Vec<i64>> = HashMap::new();
        let mut crm_events = HashSet::new();
        let mut cash_low_value = 0;
        let mut roaming_intl = 0;
        for m in &lines {
            let who = s(m, "msisdn").to_string();
            let sub = subs.get(&who).expect("event for a known subscriber");
            let ts = s(m, "ts");
            let t = ms(ts);
            match s(m, "kind") {
                "usage" => {
                    let bal = num(m, "balance_fen");
                    last_balance.insert(who.clone(), bal);
                    if bal < 500 {
                        low.entry(who.clone()).or_insert(t);
                    }
                    let scope = s(m, "scope");
                    if s(m, "service") == "voice"
                        && s(m, "direction") == "mo"
                        && (scope == "long_distance" || scope == "roaming_domestic")
                        && !has_str(sub, "services", "12593")
                        && ("09:00".."21:00").contains(&hm(ts))
                    {
                        *ld.entry(who.clone()).or_default() += 1;
                    }
                }
                "topup" => topups.entry(who.clone()).or_default().push(t),
                "location" => {
                    let cell = s(m, "cell").to_string();
                    let hub = tagged(&cell, "railway_station") || tagged(&cell, "airport");
                    let trig = s(m, "trigger");
                    if hub
                        && (trig == "attach" || trig == "handover")
                        && s(sub, "tier") == "high"
                        && !has_str(sub, "services", "call_notify")
                        && last_balance.get(&who).is_some_and(|b| *b < 1000)
                        && last_cell.get(&who).is_some_and(|c| ordinary(c))
                    {
                        if tagged(&cell, "airport") { airport += 1 } else { station += 1 }
                    }
                    if tagged(&cell, "venue:wukesong")
                        && has_str(sub, "prefs", "music")
                        && !has_str(sub, "services", "music_club")
                    {
                        venue.entry(who.clone()).or_default().push((t, ts.to_string()));
                    }
                    if m.contains_key("country") && !cell.starts_with("460-") {
                        roaming_intl += 1;
                    }
                    last_cell.insert(who.clone(), cell);
                }
                "ivr" => {
                    sessions.entry(s(m, "session").to_string()).or_default().push((
                        t,
                        who.clone(),
                        s(m, "step").to_string(),
                        s(m, "node").to_string(),
                    ));
                }
                "crm" => {
                    let ev = s(m, "event").to_string();
                    if ev == "store_visit" {
                        let attrs = m.get("attrs").and_then(Value::as_object).expect("attrs");
                        if s(attrs, "payment") == "cash" && matches!(s(sub, "tier"), "sub" | "negative") {
                            cash_low_value += 1;
                        }
                    }
                    crm_events.insert(ev);
                }
                _ => {}
            }
        }
        assert!(station >= 3, "railway station episodes: {station}");
        assert!(airport >= 1, "airport episodes: {airport}");
        assert!(ld.values().filter(|&&c| c >= 3).count() >= 3, "12593 episodes");
        let fans = venue
            .values()
            .filter(|v| {
                let first = &v[0];
                ("19:00".."19:46").contains(&hm(&first.1)) && v.len() >= 5 && v[v.len() - 1].0 - first.0 >= 70 * MINUTE
            })
            .count();
        assert!(fans >= 3, "concert episodes: {fans}");
        let mut agent_topic3: HashMap<String, usize> = HashMap::new();
        let mut without_agent = 0;
        for steps in sessions.values() {
            let enter = steps.iter().find(|x| x.2 == "enter").map(|x| x.0);
            let menu3 = steps.iter().any(|x| x.2 == "menu" && x.3 == "3");
            let agent = steps.iter().find(|x| x.2 == "agent");
            match (enter, agent) {
                (Some(e), Some(a)) if menu3 && a.3.starts_with('3') && a.0 - e <= 60 * SECOND => {
                    *agent_topic3.entry(a.1.clone()).or_default() += 1;
                }
                (Some(_), None) => without_agent += 1,
                _ => {}
            }
        }
        assert!(agent_topic3.len() >= 3, "ivr menu 3 -> agent within 60 s");
        assert!(agent_topic3.values().any(|&c| c >= 2), "repeat agent callers");
        assert!(without_agent >= 3);
        let never = low.iter().filter(|(w, t)| !topups.get(*w).is_some_and(|v| v.iter().any(|x| x > *t))).count();
        let later = low
            .iter()
            .filter(|(w, t)| topups.get(*w).is_some_and(|v| v.iter().any(|x| *x > **t && *x - **t <= 6 * HOUR)))
            .count();
        assert!(never >= 3 && later >= 3, "low balance: never {never}, later {later}");
        for ev in [
            "complaint_closed",
            "payment_posted",
            "points_expiring",
            "contract_expiring",
            "disconnect_requested",
            "store_visit",
            "points_changed",
            "discount_credited",
        ] {
            assert!(crm_events.contains(ev), "crm {ev}");
        }
        assert!(cash_low_value >= 3);
        assert!(roaming_intl >= 2);
    }

    #[test]
    fn write_dir_writes_all_files() {
        let dir = std::env::temp_dir().join(format!("tidings-gen-test-{}", std::process::id()));
        let o = GenOptions { subscribers: 60, events: 500, ..GenOptions::default() };
        write_dir(&o, &dir).expect("write");
        for f in ["subscribers.jsonl", "cells.jsonl", "calendar.jsonl", "stores.jsonl", "countries.jsonl"] {
            assert!(std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0), "{f}");
        }
        let ev = std::fs::read_to_string(dir.join("events.jsonl")).expect("read");
        assert_eq!(ev.lines().count(), 500);
        let _ = std::fs::remove_dir_all(&dir);
    }
    /// Cell id -> tags, from the reference cells.
    fn cell_tags(r: &RefFiles) -> HashMap<String, Vec<String>> {
        r.cells
            .iter()
            .map(|l| obj(l))
            .map(|m| {
                let tags = m
                    .get("tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect();
                (s(&m, "id").to_string(), tags)
            })
            .collect()
    }

    #[test]
    fn countries_cover_roaming_destinations() {
        let o = GenOptions::default();
        let r = reference(&o);
        let mut codes = HashSet::new();
        for line in &r.countries {
            let m = obj(line);
            let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["code", "data_fen", "day_pack_fen", "name", "sms_fen", "voice_fen"], "{line}");
            for f in ["voice_fen", "sms_fen", "data_fen", "day_pack_fen"] {
                assert!(num(&m, f) > 0, "{f}: {line}");
            }
            assert!(!s(&m, "name").is_empty() && !s(&m, "name").is_ascii(), "a Chinese name: {line}");
            assert!(codes.insert(s(&m, "code").to_string()), "duplicate country: {line}");
        }
        for c in ["JP", "KR", "TH"] {
            assert!(codes.contains(c), "{c} in countries.jsonl");
        }
        // Every country a visited cell or a roaming event names has a line.
        for (country, ..) in FOREIGN {
            assert!(codes.contains(country), "{country}");
        }
        for line in events(&o) {
            let m = obj(&line);
            if m.contains_key("country") {
                assert!(codes.contains(s(&m, "country")), "{line}");
            }
        }
        let j = obj(&r.countries[0]);
        assert_eq!(s(&j, "code"), "JP");
        assert_eq!(s(&j, "name"), "日本");
        assert_eq!(num(&j, "voice_fen"), 99);
    }

    #[test]
    fn discount_credited_in_daytime() {
        let mut n = 0;
        for line in events(&GenOptions::default()) {
            if !line.contains("\"discount_credited\"") {
                continue;
            }
            let m = obj(&line);
            assert_eq!(s(&m, "kind"), "crm", "{line}");
            let attrs = m.get("attrs").and_then(Value::as_object).expect("attrs");
            assert!(num(attrs, "amount_fen") > 0, "{line}");
            assert!(!s(attrs, "reason").is_empty(), "{line}");
            assert!(("08:00".."20:00").contains(&hm(s(&m, "ts"))), "{line}");
            n += 1;
        }
        // A modest share of the ~4 % CRM lines.
        assert!((100..2000).contains(&n), "discount_credited lines: {n}");
    }

    #[test]
    fn weather_trips_occur_in_default_run() {
        let o = GenOptions::default();
        let r = reference(&o);
        let tags = cell_tags(&r);
        let tagged = |cell: &str, tag: &str| tags.get(cell).is_some_and(|t| t.iter().any(|x| x == tag));
        let tianjin = tags.values().filter(|t| t.iter().any(|x| x == "city:tianjin")).count();
        assert!(tianjin >= 3, "city:tianjin cells: {tianjin}");
        let alerts: Vec<(i64, i64)> = r
            .calendar
            .iter()
            .map(|l| obj(l))
            .filter(|m| s(m, "kind") == "weather_alert")
            .map(|m| {
                assert!(s(&m, "name").starts_with("weather_alert_tianjin_"), "{m:?}");
                assert_eq!(s(&m, "venue"), "city:tianjin");
                assert_eq!(s(&m, "title"), "暴雨蓝色预警");
                (ms(s(&m, "start")), ms(s(&m, "end")))
            })
            .collect();
        assert_eq!(alerts, [(o.start + 6 * HOUR, o.start + 30 * HOUR)]);
        let subs: HashMap<String, Map<String, Value>> =
            r.subscribers.iter().map(|l| obj(l)).map(|m| (s(&m, "msisdn").to_string(), m)).collect();
        // Cells as the engine tracks them: location and usage lines both move a subscriber.
        let mut cell: HashMap<String, String> = HashMap::new();
        let mut arrived: HashSet<String> = HashSet::new();
        let mut returned = 0;
        for line in events(&o) {
            let m = obj(&line);
            let Some(now) = m.get("cell").and_then(Value::as_str).map(String::from) else {
                continue;
            };
            let who = s(&m, "msisdn").to_string();
            let ts = s(&m, "ts");
            let t = ms(ts);
            let prev = cell.insert(who.clone(), now.clone()).unwrap_or_default();
            if s(&m, "kind") != "location" {
                continue;
            }
            let sub = subs.get(&who).expect("known subscriber");
            if tagged(&now, "city:tianjin")
                && tagged(&prev, "city:beijing")
                && alerts.iter().any(|(a, b)| (*a..*b).contains(&t))
                && ("09:00".."20:01").contains(&hm(ts))
                && s(sub, "status") == "active"
                && !has_str(sub, "services", "weather")
            {
                arrived.insert(who.clone());
            }
            if tagged(&now, "city:beijing") && tagged(&prev, "city:tianjin") && arrived.contains(&who) {
                returned += 1;
            }
        }
        assert!(arrived.len() >= 5, "weather trips: {}", arrived.len());
        assert!(returned >= 2, "trips back to Beijing: {returned}");
    }

    #[test]
    fn churners_spend_then_stop() {
        // The shipped configuration's size: 40 days, long enough for the 35-day churn window.
        let o = GenOptions { events: 400_000, days: 40, ..GenOptions::default() };
        let m = Model::new(&o);
        assert!((10..=100).contains(&m.churners.len()), "{}", m.churners.len());
        for &i in &m.churners {
            assert!(m.is_churner(i));
            let sub = obj(&subscriber_line(&m, i));
            assert_eq!((s(&sub, "tier"), s(&sub, "status")), ("high", "active"), "{sub:?}");
            assert_eq!(sub.get("dnd"), Some(&Value::Bool(false)));
        }
        assert_eq!((0..m.n).filter(|&i| m.is_churner(i)).count(), m.churners.len());
        let r = reference(&o);
        let high: HashSet<String> = r
            .subscribers
            .iter()
            .map(|l| obj(l))
            .filter(|m| s(m, "tier") == "high" && s(m, "status") == "active")
            .map(|m| s(&m, "msisdn").to_string())
            .collect();
        let mut charges: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for line in events(&o) {
            let e = obj(&line);
            if s(&e, "kind") == "usage" && num(&e, "charge_fen") > 0 && high.contains(s(&e, "msisdn")) {
                charges.entry(s(&e, "msisdn").to_string()).or_default().push((ms(s(&e, "ts")), num(&e, "charge_fen")));
            }
        }
        // churn_warning, checked daily at 10:00: 28 days of 100 CNY or more, then a week under a
        // tenth of that.
        let sum = |v: &[(i64, i64)], from: i64, to: i64| -> i64 {
            v.iter().filter(|(t, _)| *t > from && *t <= to).map(|(_, c)| c).sum()
        };
        let mut warned: HashMap<String, i64> = HashMap::new();
        for d in 0..i64::from(o.days) {
            let at = o.start + d * DAY + 10 * HOUR;
            for (who, v) in &charges {
                let last7 = sum(v, at - 7 * DAY, at);
                let before = sum(v, at - 35 * DAY, at) - last7;
                if before >= 10_000 && last7 * 10 < before {
                    warned.entry(who.clone()).or_insert(d);
                }
            }
        }
        let churners: HashSet<String> = m.churners.iter().map(|&i| m.msisdn(i).to_string()).collect();
        let hit = warned.keys().filter(|w| churners.contains(*w)).count();
        assert!(hit >= 10 && hit * 10 >= churners.len() * 9, "churners warned: {hit} of {}", churners.len());
        // Only after they have stopped: never on ordinary traffic, never while they still spend.
        let stop: HashMap<String, i64> =
            m.churners.iter().map(|&i| (m.msisdn(i).to_string(), i64::from(m.churn_stop(i)))).collect();
        for (who, d) in &warned {
            assert!(stop.get(who).is_some_and(|s| *d >= s + 3 && *d >= 29), "{who} on day {d}: {warned:?}");
        }
    }
}
