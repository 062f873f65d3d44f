//! The places: Beijing's ordinary areas, its railway stations, the airport, the concert venue,
//! the operator's stores, other provinces' cells and networks abroad, as cells with tags the rules
//! match on, and the reference lines for cells, stores and roaming countries.
//!
//! The special places are fixed; the ordinary cells scale with the base (one per 40 subscribers,
//! 200 to 5000) and scatter around their area's centre from the seed.

use std::fmt::Write as _;

use super::rng::Rng;

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
pub(super) const CUTOVER_TAG: &str = "cutover:zgc01";
/// A second cut-over, the same night in another area: the notice is per calendar entry.
const CUTOVER2_AREA: usize = 3;
pub(super) const CUTOVER2_TAG: &str = "cutover:wj02";

/// Stores (top-up points): name, address, latitude, longitude. Ids are S001.. in this order.
pub(super) const STORES: [(&str, &str, f64, f64); 15] = [
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
pub(super) const VENUE: (&str, &str, f64, f64) = ("五棵松体育馆", "venue:wukesong", 39.9087, 116.2741);
/// The artist whose fans the generator makes (the concerts at the venue are theirs).
pub(super) const ARTIST: &str = "周杰伦";

/// Visited networks abroad: country, PLMN, place, latitude, longitude.
pub(super) const FOREIGN: [(&str, &str, &str, f64, f64); 6] = [
    ("JP", "440-10", "东京成田机场", 35.7720, 140.3929),
    ("JP", "440-10", "东京新宿", 35.6900, 139.7000),
    ("KR", "450-05", "首尔仁川机场", 37.4602, 126.4407),
    ("KR", "450-05", "首尔明洞", 37.5636, 126.9850),
    ("TH", "520-01", "曼谷素万那普机场", 13.6900, 100.7501),
    ("TH", "520-01", "曼谷暹罗", 13.7460, 100.5340),
];
/// Roaming destinations and their tariffs (countries.jsonl): code, name, voice fen per minute,
/// SMS fen each, data fen per MB, day pack fen per day. Every country of [`FOREIGN`] is here.
pub(super) const COUNTRIES: [(&str, &str, u32, u32, u32, u32); 3] =
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
pub(super) const ALERT_CITY: &str = "tianjin";
const ALERT_CITY_CELLS: [(&str, u32, f64, f64); 2] =
    [("天津西站", 2202, 39.1580, 117.1630), ("天津滨江道", 2203, 39.1230, 117.1980)];

/// A cell of the cells file; `country` is set on networks abroad (location lines carry it).
pub(super) struct Cell {
    pub(super) id: String,
    pub(super) lat: f64,
    pub(super) lon: f64,
    pub(super) name: String,
    pub(super) tags: Vec<String>,
    pub(super) country: Option<&'static str>,
}

/// The cells, and the indices of each kind of place among them.
pub(super) struct World {
    pub(super) cells: Vec<Cell>,
    pub(super) residential: Vec<u32>,
    pub(super) business: Vec<u32>,
    pub(super) stations: Vec<Vec<u32>>,
    pub(super) airport: Vec<u32>,
    pub(super) venue: Vec<u32>,
    /// One cell per store, in store order.
    pub(super) store_cells: Vec<u32>,
    /// Other provinces' cells.
    pub(super) domestic: Vec<u32>,
    /// Per visited country: its cells, the airport first.
    pub(super) foreign: Vec<Vec<u32>>,
    /// Cells of the city that gets weather alerts (tagged `city:tianjin`).
    pub(super) alert_city: Vec<u32>,
    /// Stations, the airport, the venue and stores: where anyone turns up now and then.
    pub(super) landmarks: Vec<u32>,
}

impl World {
    /// The world for a base of `subscribers`.
    pub(super) fn build(seed: u64, subscribers: usize) -> World {
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
                ids.push(w.add("460-00", 4125, (la, lo), format!("{name}-{}", j + 1), tags));
            }
            w.landmarks.extend_from_slice(&ids);
            w.stations.push(ids);
        }
        for (name, lat, lon) in AIRPORT_CELLS {
            let id = w.add("460-00", 4130, (lat, lon), name.to_string(), vec!["airport".into(), city.clone()]);
            w.airport.push(id);
            w.landmarks.push(id);
        }
        for j in 0..3 {
            let (la, lo) = (VENUE.2 + rng.range(-8, 9) as f64 * 1e-4, VENUE.3 + rng.range(-8, 9) as f64 * 1e-4);
            let tags = vec![VENUE.1.to_string(), city.clone()];
            let id = w.add("460-00", 4127, (la, lo), format!("{}-{}", VENUE.0, j + 1), tags);
            w.venue.push(id);
            w.landmarks.push(id);
        }
        for (k, (name, _, lat, lon)) in STORES.iter().enumerate() {
            let tags = vec![format!("store:{}", store_id(k)), "business".into(), city.clone()];
            let id = w.add("460-00", 4140, (*lat, *lon), name.to_string(), tags);
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
            if a == CUTOVER2_AREA && per_area[a] <= 6 {
                tags.push(CUTOVER2_TAG.to_string());
            }
            let id = w.add("460-00", 4101 + a as u32, (la, lo), format!("{name}-{}", per_area[a]), tags);
            if business { w.business.push(id) } else { w.residential.push(id) }
        }
        for (name, city, lac, lat, lon) in DOMESTIC {
            let tags = vec![format!("city:{city}"), "roaming_domestic".into()];
            let id = w.add("460-00", lac, (lat, lon), name.to_string(), tags);
            w.domestic.push(id);
            if city == ALERT_CITY {
                w.alert_city.push(id);
            }
        }
        let mut last_country = "";
        for (k, (country, plmn, name, lat, lon)) in FOREIGN.iter().enumerate() {
            let tags = vec!["roaming_international".into(), format!("country:{country}")];
            let id = w.add(plmn, 1001 + k as u32, (*lat, *lon), name.to_string(), tags);
            w.cells[id as usize].country = Some(*country);
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
            let id = w.add("460-00", lac, (lat, lon), name.to_string(), tags);
            w.alert_city.push(id);
        }
        w
    }

    /// Adds a cell at `(lat, lon)`; its id is `plmn-lac-ci` with a cell identity from its index.
    fn add(&mut self, plmn: &str, lac: u32, (lat, lon): (f64, f64), name: String, tags: Vec<String>) -> u32 {
        let c = self.cells.len() as u64;
        // A stride coprime to the modulus keeps cell identities unique yet not sequential.
        let ci = 10_000 + (c * 7919) % 89_999;
        self.cells.push(Cell {
            id: format!("{plmn}-{lac}-{ci}"),
            lat: (lat * 1e5).round() / 1e5,
            lon: (lon * 1e5).round() / 1e5,
            name,
            tags,
            country: None,
        });
        c as u32
    }

    /// The id of cell `cell` (empty for no such cell).
    pub(super) fn id(&self, cell: u32) -> &str {
        self.cells.get(cell as usize).map_or("", |c| c.id.as_str())
    }
}

/// Store ids are S001.. in [`STORES`] order.
pub(super) fn store_id(k: usize) -> String {
    format!("S{:03}", k + 1)
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

pub(super) fn cell_line(c: &Cell) -> String {
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

pub(super) fn store_line(k: usize) -> String {
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

pub(super) fn country_line(c: &(&str, &str, u32, u32, u32, u32)) -> String {
    let (code, name, voice, sms, data, day_pack) = *c;
    format!(
        "{{\"code\":{},\"name\":{},\"voice_fen\":{voice},\"sms_fen\":{sms},\"data_fen\":{data},\"day_pack_fen\":{day_pack}}}",
        json_str(code),
        json_str(name)
    )
}
