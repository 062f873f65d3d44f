//! The subscriber master record (three-party model: customer owns users, a user bills to an
//! account) and the changes `profile` events make to it.

use super::names::{Labels, Names, StrRef, Vocab};
use crate::contact::Channel;
use crate::util::{Msisdn, symbols};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

symbols!(Brand { Gotone = "gotone", Mzone = "mzone", Easyown = "easyown" });
symbols!(
    /// Value tier: value = revenue minus cost; `high` is 50 CNY a month and over.
    Tier { High = "high", Valuable = "valuable", Sub = "sub", Negative = "negative" }
);
symbols!(Status { Active = "active", Suspended = "suspended", PreCancel = "pre_cancel", Cancelled = "cancelled" });
/// Do-not-disturb: everything, or a set of channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dnd {
    pub all: bool,
    pub channels: u8,
}

impl Dnd {
    pub fn blocks(self, ch: Channel) -> bool {
        self.all || self.channels & ch.bit() != 0
    }
    pub fn any(self) -> bool {
        self.all || self.channels != 0
    }

    fn from_json(v: &Value) -> Result<Dnd, String> {
        match v {
            Value::Bool(all) => Ok(Dnd { all: *all, channels: 0 }),
            Value::Null => Ok(Dnd::default()),
            Value::Array(items) => {
                let mut d = Dnd::default();
                for it in items {
                    let s = it.as_str().ok_or("dnd: expected channel names")?;
                    if s == "all" {
                        d.all = true;
                    } else {
                        d.channels |= Channel::parse(s)
                            .ok_or_else(|| format!("dnd: unknown channel `{s}` (sms, call, ivr or all)"))?
                            .bit();
                    }
                }
                Ok(d)
            }
            _ => Err("dnd: expected true/false or a list of channels".into()),
        }
    }
}

/// The dates a subscriber's contracts run to, each optional (older subscriber files have none):
/// rules read the days left (`subscriber.days_to_contract_expiry`) and warn ahead of time
/// without waiting for CRM to send an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dates {
    /// The current package (tariff bundle) ends.
    pub package_expires: Option<NaiveDate>,
    /// The service contract (合约) ends.
    pub contract_expires: Option<NaiveDate>,
    /// The handset lease (购机分期/租机) ends.
    pub lease_expires: Option<NaiveDate>,
    /// The subscriber agreed to stay until this date for a reward (在网承诺).
    pub stay_until: Option<NaiveDate>,
}

#[derive(Clone, Debug)]
pub struct SubscriberRecord {
    pub msisdn: Msisdn,
    pub customer_id: Box<str>,
    pub account_id: Box<str>,
    pub brand: Brand,
    pub tier: Tier,
    pub arpu_fen: i64,
    pub join_date: Option<NaiveDate>,
    /// (month, day)
    pub birthday: Option<(u32, u32)>,
    pub corporate: bool,
    pub foreign: bool,
    pub employee: bool,
    pub services: Vec<Box<str>>,
    pub dnd: Dnd,
    pub status: Status,
    pub prefs: Vec<Box<str>>,
    pub channel_pref: Option<Channel>,
    pub dates: Dates,
}

impl SubscriberRecord {
    /// A subscriber the reference data does not know: rules see defaults, and conditions on
    /// profile fields that need a real record (tier, brand) are simply false.
    pub fn unknown(msisdn: Msisdn) -> SubscriberRecord {
        SubscriberRecord {
            msisdn,
            customer_id: "".into(),
            account_id: "".into(),
            brand: Brand::Gotone,
            tier: Tier::Sub,
            arpu_fen: 0,
            join_date: None,
            birthday: None,
            corporate: false,
            foreign: false,
            employee: false,
            services: Vec::new(),
            dnd: Dnd::default(),
            status: Status::Active,
            prefs: Vec::new(),
            channel_pref: None,
            dates: Dates::default(),
        }
    }

    pub fn has_service(&self, s: &str) -> bool {
        self.services.iter().any(|x| &**x == s)
    }
}

/// A subscriber record as a shard keeps it: the strings live in the shard's [`Names`] (ids as
/// arena offsets, services and preferences as bit sets), dates and flags packed: one cache line
/// (64 bytes, aligned to it) against 144 plus five heap allocations for a [`SubscriberRecord`].
#[derive(Clone, Debug, PartialEq)]
#[repr(align(64))]
pub struct Profile {
    pub msisdn: Msisdn,
    /// Fen a month: up to 21 million CNY, which the loaders check ([`check_arpu_fen`]).
    arpu_fen: i32,
    pub services: Labels,
    pub prefs: Labels,
    pub customer_id: StrRef,
    pub account_id: StrRef,
    pub join_date: Option<NaiveDate>,
    /// month × 32 + day, 0 for none.
    birthday: u16,
    pub brand: Brand,
    pub tier: Tier,
    pub status: Status,
    pub channel_pref: Option<Channel>,
    /// Do-not-disturb's channel bits, and [`DND_ALL`].
    dnd: u8,
    pub dates: Dates,
    flags: u8,
}

/// A subscriber record's monthly revenue in fen, or why a profile cannot keep it.
pub fn check_arpu_fen(v: i64) -> Result<i64, String> {
    match i32::try_from(v) {
        Ok(_) => Ok(v),
        Err(_) => Err(format!("arpu_fen: {v} is out of range (at most 2147483647 fen a month)")),
    }
}

/// `Profile::dnd`'s bit for every channel (channel bits are the low ones).
const DND_ALL: u8 = 0x80;
const _: () = assert!(Channel::NAMES.len() < 8, "a channel's do-not-disturb bit would meet DND_ALL");

/// The monthly revenue a profile keeps: read values are checked ([`check_arpu_fen`]); one made
/// otherwise (a test's record) is clamped.
fn arpu_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn pack_birthday(b: Option<(u32, u32)>) -> u16 {
    b.map_or(0, |(m, d)| ((m as u16) << 5) | (d as u16 & 31))
}

fn pack_dnd(d: Dnd) -> u8 {
    d.channels & !DND_ALL | if d.all { DND_ALL } else { 0 }
}

const CORPORATE: u8 = 1;
const FOREIGN: u8 = 2;
const EMPLOYEE: u8 = 4;
/// The reference data (or a `profile` event) knows the subscriber.
const KNOWN: u8 = 8;

impl Profile {
    /// The compact form of a record, its strings added to `names`.
    pub fn new(s: &SubscriberRecord, known: bool, names: &mut Names) -> Profile {
        let mut p = Profile {
            msisdn: s.msisdn,
            arpu_fen: arpu_i32(s.arpu_fen),
            services: names.services.set_of(&s.services),
            prefs: names.prefs.set_of(&s.prefs),
            customer_id: names.add(&s.customer_id),
            account_id: names.add(&s.account_id),
            join_date: s.join_date,
            birthday: pack_birthday(s.birthday),
            brand: s.brand,
            tier: s.tier,
            status: s.status,
            channel_pref: s.channel_pref,
            dnd: pack_dnd(s.dnd),
            dates: s.dates,
            flags: 0,
        };
        p.set_flag(CORPORATE, s.corporate);
        p.set_flag(FOREIGN, s.foreign);
        p.set_flag(EMPLOYEE, s.employee);
        p.set_flag(KNOWN, known);
        p
    }

    /// A subscriber the reference data does not know (see [`SubscriberRecord::unknown`]).
    pub fn unknown(msisdn: Msisdn) -> Profile {
        Profile::new(&SubscriberRecord::unknown(msisdn), false, &mut Names::default())
    }

    /// The full record back (for `explain` and tests).
    pub fn record(&self, names: &Names) -> SubscriberRecord {
        let list = |v: &Vocab, l: &Labels| v.names_of(l).into_iter().map(Into::into).collect();
        SubscriberRecord {
            msisdn: self.msisdn,
            customer_id: names.get(self.customer_id).into(),
            account_id: names.get(self.account_id).into(),
            brand: self.brand,
            tier: self.tier,
            arpu_fen: self.arpu_fen(),
            join_date: self.join_date,
            birthday: self.birthday(),
            corporate: self.corporate(),
            foreign: self.foreign(),
            employee: self.employee(),
            services: list(&names.services, &self.services),
            dnd: self.dnd(),
            status: self.status,
            prefs: list(&names.prefs, &self.prefs),
            channel_pref: self.channel_pref,
            dates: self.dates,
        }
    }

    fn set_flag(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    pub fn corporate(&self) -> bool {
        self.flags & CORPORATE != 0
    }
    pub fn foreign(&self) -> bool {
        self.flags & FOREIGN != 0
    }
    pub fn employee(&self) -> bool {
        self.flags & EMPLOYEE != 0
    }
    pub fn known(&self) -> bool {
        self.flags & KNOWN != 0
    }
    pub fn set_known(&mut self) {
        self.flags |= KNOWN;
    }
    /// (month, day)
    pub fn birthday(&self) -> Option<(u32, u32)> {
        (self.birthday != 0).then(|| (u32::from(self.birthday >> 5), u32::from(self.birthday & 31)))
    }

    /// Monthly revenue (fen).
    pub fn arpu_fen(&self) -> i64 {
        i64::from(self.arpu_fen)
    }

    pub fn dnd(&self) -> Dnd {
        Dnd { all: self.dnd & DND_ALL != 0, channels: self.dnd & !DND_ALL }
    }

    pub fn apply(&mut self, change: &ProfileChange, names: &mut Names) {
        use ProfileChange as C;
        let add = |l: &mut Labels, v: &mut Vocab, items: &[Box<str>]| {
            items.iter().for_each(|s| {
                let id = v.intern(s);
                v.set(l, id, true)
            })
        };
        let remove = |l: &mut Labels, v: &mut Vocab, items: &[Box<str>]| {
            for s in items {
                if let Some(id) = v.id(s) {
                    v.set(l, id, false);
                }
            }
        };
        match change {
            C::CustomerId(v) => names.replace(&mut self.customer_id, v),
            C::AccountId(v) => names.replace(&mut self.account_id, v),
            C::Brand(v) => self.brand = *v,
            C::Tier(v) => self.tier = *v,
            C::ArpuFen(v) => self.arpu_fen = arpu_i32(*v),
            C::JoinDate(v) => self.join_date = *v,
            C::Birthday(v) => self.birthday = pack_birthday(*v),
            C::Corporate(v) => self.set_flag(CORPORATE, *v),
            C::Foreign(v) => self.set_flag(FOREIGN, *v),
            C::Employee(v) => self.set_flag(EMPLOYEE, *v),
            C::Services(v) => self.services = names.services.set_of(v),
            C::AddServices(v) => add(&mut self.services, &mut names.services, v),
            C::RemoveServices(v) => remove(&mut self.services, &mut names.services, v),
            C::Dnd(v) => self.dnd = pack_dnd(*v),
            C::Status(v) => self.status = *v,
            C::Prefs(v) => self.prefs = names.prefs.set_of(v),
            C::AddPrefs(v) => add(&mut self.prefs, &mut names.prefs, v),
            C::RemovePrefs(v) => remove(&mut self.prefs, &mut names.prefs, v),
            C::ChannelPref(v) => self.channel_pref = *v,
            C::PackageExpires(v) => self.dates.package_expires = *v,
            C::ContractExpires(v) => self.dates.contract_expires = *v,
            C::LeaseExpires(v) => self.dates.lease_expires = *v,
            C::StayUntil(v) => self.dates.stay_until = *v,
        }
    }

    pub fn unset(&mut self, field: ProfileField, names: &mut Names) {
        let blank = SubscriberRecord::unknown(self.msisdn);
        use ProfileField as F;
        match field {
            F::CustomerId => names.replace(&mut self.customer_id, ""),
            F::AccountId => names.replace(&mut self.account_id, ""),
            F::Brand => self.brand = blank.brand,
            F::Tier => self.tier = blank.tier,
            F::ArpuFen => self.arpu_fen = 0,
            F::JoinDate => self.join_date = None,
            F::Birthday => self.birthday = 0,
            F::Corporate => self.set_flag(CORPORATE, false),
            F::Foreign => self.set_flag(FOREIGN, false),
            F::Employee => self.set_flag(EMPLOYEE, false),
            F::Services => self.services = Labels::default(),
            F::Dnd => self.dnd = 0,
            F::Status => self.status = Status::Active,
            F::Prefs => self.prefs = Labels::default(),
            F::ChannelPref => self.channel_pref = None,
            F::PackageExpires => self.dates.package_expires = None,
            F::ContractExpires => self.dates.contract_expires = None,
            F::LeaseExpires => self.dates.lease_expires = None,
            F::StayUntil => self.dates.stay_until = None,
        }
    }
}

symbols!(
    /// A field of the subscriber record that `profile` events may set or unset.
    ProfileField {
        CustomerId = "customer_id",
        AccountId = "account_id",
        Brand = "brand",
        Tier = "tier",
        ArpuFen = "arpu_fen",
        JoinDate = "join_date",
        Birthday = "birthday",
        Corporate = "corporate",
        Foreign = "foreign",
        Employee = "employee",
        Services = "services",
        Dnd = "dnd",
        Status = "status",
        Prefs = "prefs",
        ChannelPref = "channel_pref",
        PackageExpires = "package_expires",
        ContractExpires = "contract_expires",
        LeaseExpires = "lease_expires",
        StayUntil = "stay_until",
    }
);

/// One typed change to a subscriber record.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileChange {
    CustomerId(Box<str>),
    AccountId(Box<str>),
    Brand(Brand),
    Tier(Tier),
    ArpuFen(i64),
    JoinDate(Option<NaiveDate>),
    Birthday(Option<(u32, u32)>),
    Corporate(bool),
    Foreign(bool),
    Employee(bool),
    Services(Vec<Box<str>>),
    AddServices(Vec<Box<str>>),
    RemoveServices(Vec<Box<str>>),
    Dnd(Dnd),
    Status(Status),
    Prefs(Vec<Box<str>>),
    AddPrefs(Vec<Box<str>>),
    RemovePrefs(Vec<Box<str>>),
    ChannelPref(Option<Channel>),
    PackageExpires(Option<NaiveDate>),
    ContractExpires(Option<NaiveDate>),
    LeaseExpires(Option<NaiveDate>),
    StayUntil(Option<NaiveDate>),
}

impl ProfileChange {
    /// Checks one `set` entry (`field: value`) of a profile event.
    pub fn from_json(field: &str, v: &Value) -> Result<ProfileChange, String> {
        let f = ProfileField::parse(field).ok_or_else(|| {
            let hint = crate::util::nearest(field, ProfileField::NAMES.iter().copied())
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            format!("unknown profile field `{field}`{hint}")
        })?;
        Self::typed(f, v).map_err(|e| format!("{field}: {e}"))
    }

    /// An `add` (`grow == true`) or `remove` entry: only the list fields take these.
    pub fn list_delta(field: &str, v: &Value, grow: bool) -> Result<ProfileChange, String> {
        let items = str_list(v).map_err(|e| format!("{field}: {e}"))?;
        match (field, grow) {
            ("services", true) => Ok(ProfileChange::AddServices(items)),
            ("services", false) => Ok(ProfileChange::RemoveServices(items)),
            ("prefs", true) => Ok(ProfileChange::AddPrefs(items)),
            ("prefs", false) => Ok(ProfileChange::RemovePrefs(items)),
            _ => Err(format!("`{field}` is not a list field (services, prefs)")),
        }
    }

    fn typed(f: ProfileField, v: &Value) -> Result<ProfileChange, String> {
        use ProfileChange as C;
        use ProfileField as F;
        let opt_date = |v: &Value| if v.is_null() { Ok(None) } else { string(v).and_then(date).map(Some) };
        Ok(match f {
            F::CustomerId => C::CustomerId(string(v)?.into()),
            F::AccountId => C::AccountId(string(v)?.into()),
            F::Brand => C::Brand(symbol(v, Brand::parse, Brand::NAMES)?),
            F::Tier => C::Tier(symbol(v, Tier::parse, Tier::NAMES)?),
            F::ArpuFen => C::ArpuFen(check_arpu_fen(v.as_i64().ok_or("expected an integer (fen)")?)?),
            F::JoinDate => C::JoinDate(if v.is_null() { None } else { Some(date(string(v)?)?) }),
            F::Birthday => C::Birthday(if v.is_null() { None } else { Some(month_day(string(v)?)?) }),
            F::Corporate => C::Corporate(v.as_bool().ok_or("expected true or false")?),
            F::Foreign => C::Foreign(v.as_bool().ok_or("expected true or false")?),
            F::Employee => C::Employee(v.as_bool().ok_or("expected true or false")?),
            F::Services => C::Services(str_list(v)?),
            F::Dnd => C::Dnd(Dnd::from_json(v)?),
            F::Status => C::Status(symbol(v, Status::parse, Status::NAMES)?),
            F::Prefs => C::Prefs(str_list(v)?),
            F::ChannelPref => {
                C::ChannelPref(if v.is_null() { None } else { Some(symbol(v, Channel::parse, Channel::NAMES)?) })
            }
            F::PackageExpires => C::PackageExpires(opt_date(v)?),
            F::ContractExpires => C::ContractExpires(opt_date(v)?),
            F::LeaseExpires => C::LeaseExpires(opt_date(v)?),
            F::StayUntil => C::StayUntil(opt_date(v)?),
        })
    }
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expected a string, got {v}"))
}

fn symbol<T>(v: &Value, parse: fn(&str) -> Option<T>, names: &[&str]) -> Result<T, String> {
    let s = string(v)?;
    parse(s).ok_or_else(|| format!("unknown value `{s}` (one of: {})", names.join(", ")))
}

fn str_list(v: &Value) -> Result<Vec<Box<str>>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(Into::into).ok_or_else(|| format!("expected strings, got {i}")))
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err("expected a list of strings".into()),
    }
}

fn date(s: &str) -> Result<NaiveDate, String> {
    // `YYYY-MM-DD` read digit by digit (a reference file of millions of records has several
    // dates each); any other spelling as chrono reads `%Y-%m-%d`.
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let quick = match b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        true => digits(0..4).zip(digits(5..7)).zip(digits(8..10)),
        false => None,
    };
    let parsed = match quick {
        Some(((y, m), d)) => NaiveDate::from_ymd_opt(y as i32, m, d),
        None => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
    };
    parsed.ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

fn opt_date(field: &str, s: Option<&str>) -> Result<Option<NaiveDate>, String> {
    s.map(date).transpose().map_err(|e| format!("{field}: {e}"))
}

/// `MM-DD`, checked against a leap year so that 02-29 is accepted.
pub fn month_day(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a birthday (MM-DD)");
    let (m, d) = s.split_once('-').ok_or_else(bad)?;
    let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    NaiveDate::from_ymd_opt(2000, m, d).ok_or_else(bad)?;
    Ok((m, d))
}

/// A line of `subscribers.jsonl`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriberLine {
    msisdn: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    account_id: String,
    brand: String,
    tier: String,
    #[serde(default)]
    arpu_fen: i64,
    join_date: Option<String>,
    birthday: Option<String>,
    #[serde(default)]
    corporate: bool,
    #[serde(default)]
    foreign: bool,
    #[serde(default)]
    employee: bool,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    dnd: Value,
    #[serde(default = "active")]
    status: String,
    #[serde(default)]
    prefs: Vec<String>,
    channel_pref: Option<String>,
    package_expires: Option<String>,
    contract_expires: Option<String>,
    lease_expires: Option<String>,
    stay_until: Option<String>,
}

fn active() -> String {
    "active".into()
}

impl TryFrom<SubscriberLine> for SubscriberRecord {
    type Error = String;
    fn try_from(r: SubscriberLine) -> Result<SubscriberRecord, String> {
        let msisdn = Msisdn::parse(&r.msisdn).ok_or_else(|| "msisdn: expected 5 to 15 digits".to_string())?;
        let sym = |s: &str| Value::String(s.to_string());
        Ok(SubscriberRecord {
            msisdn,
            customer_id: r.customer_id.into(),
            account_id: r.account_id.into(),
            brand: symbol(&sym(&r.brand), Brand::parse, Brand::NAMES).map_err(|e| format!("brand: {e}"))?,
            tier: symbol(&sym(&r.tier), Tier::parse, Tier::NAMES).map_err(|e| format!("tier: {e}"))?,
            arpu_fen: check_arpu_fen(r.arpu_fen)?,
            join_date: r.join_date.as_deref().map(date).transpose()?,
            birthday: r.birthday.as_deref().map(month_day).transpose()?,
            corporate: r.corporate,
            foreign: r.foreign,
            employee: r.employee,
            services: r.services.into_iter().map(Into::into).collect(),
            dnd: Dnd::from_json(&r.dnd)?,
            status: symbol(&sym(&r.status), Status::parse, Status::NAMES).map_err(|e| format!("status: {e}"))?,
            prefs: r.prefs.into_iter().map(Into::into).collect(),
            channel_pref: match r.channel_pref.as_deref() {
                None => None,
                Some(c) => Some(Channel::parse(c).ok_or_else(|| format!("channel_pref: unknown channel `{c}`"))?),
            },
            dates: Dates {
                package_expires: opt_date("package_expires", r.package_expires.as_deref())?,
                contract_expires: opt_date("contract_expires", r.contract_expires.as_deref())?,
                lease_expires: opt_date("lease_expires", r.lease_expires.as_deref())?,
                stay_until: opt_date("stay_until", r.stay_until.as_deref())?,
            },
        })
    }
}

impl SubscriberRecord {
    /// Parses one line of `subscribers.jsonl` (used by tests and the generator's round trip).
    pub fn from_json_line(line: &str) -> Result<SubscriberRecord, String> {
        let rec: SubscriberLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
        SubscriberRecord::try_from(rec)
    }
}

/// A bit of the checkpointed flags byte: the record's [`Dates`] follow the byte. Checkpoints
/// written before the dates existed never set it (the byte held three flags), so they read as
/// before, without a new checkpoint format; a record without dates writes nothing more.
const DATES_FOLLOW: u8 = 0x80;

fn days_ce(d: Option<NaiveDate>) -> Option<i64> {
    use chrono::Datelike;
    d.map(|d| i64::from(d.num_days_from_ce()))
}

fn from_days_ce(d: &mut crate::codec::Dec) -> Result<Option<NaiveDate>, crate::codec::Bad> {
    match d.opt_i64()? {
        Some(n) => i32::try_from(n)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .map(Some)
            .ok_or_else(|| crate::codec::Bad(format!("bad date {n}"))),
        None => Ok(None),
    }
}

impl Profile {
    /// Appends this record to a checkpoint record, its strings written out (a shard's string
    /// table is its own and changes).
    pub fn encode(&self, e: &mut crate::codec::Enc, names: &Names) {
        use chrono::Datelike;
        // Straight from the compact fields: this runs for every subscriber of a checkpoint.
        let labels = |e: &mut crate::codec::Enc, v: &Vocab, l: &Labels| {
            let at = e.buf.len();
            e.u32(0);
            let mut n = 0u32;
            v.each_name(l, |s| {
                e.str(s);
                n += 1;
            });
            e.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        };
        e.u64(self.msisdn.raw());
        e.bool(self.known());
        e.str(names.get(self.customer_id));
        e.str(names.get(self.account_id));
        e.str(self.brand.as_str());
        e.str(self.tier.as_str());
        e.i64(self.arpu_fen());
        e.opt_i64(self.join_date.map(|d| i64::from(d.num_days_from_ce())));
        e.opt_i64(self.birthday().map(|(m, d)| i64::from(m * 100 + d)));
        let has_dates = self.dates != Dates::default();
        e.u8(u8::from(self.corporate())
            | u8::from(self.foreign()) << 1
            | u8::from(self.employee()) << 2
            | if has_dates { DATES_FOLLOW } else { 0 });
        if has_dates {
            let d = &self.dates;
            for date in [d.package_expires, d.contract_expires, d.lease_expires, d.stay_until] {
                e.opt_i64(days_ce(date));
            }
        }
        labels(e, &names.services, &self.services);
        let dnd = self.dnd();
        e.bool(dnd.all);
        e.u8(dnd.channels);
        e.str(self.status.as_str());
        labels(e, &names.prefs, &self.prefs);
        e.opt_str(self.channel_pref.map(|c| c.as_str()));
    }

    /// Reads a record [`Profile::encode`] wrote, its strings added to `names`.
    pub fn decode(d: &mut crate::codec::Dec, names: &mut Names) -> Result<Profile, crate::codec::Bad> {
        use crate::codec::Bad;
        let msisdn = Msisdn::from_raw(d.u64()?);
        let known = d.bool()?;
        let customer_id = d.str()?.into();
        let account_id = d.str()?.into();
        let brand = d.sym(Brand::parse)?;
        let tier = d.sym(Tier::parse)?;
        let arpu_fen = check_arpu_fen(d.i64()?).map_err(Bad)?;
        let join_date = match d.opt_i64()? {
            Some(n) => {
                Some(NaiveDate::from_num_days_from_ce_opt(n as i32).ok_or_else(|| Bad(format!("bad join date {n}")))?)
            }
            None => None,
        };
        let birthday = d.opt_i64()?.map(|md| ((md / 100) as u32, (md % 100) as u32));
        let flags = d.u8()?;
        let dates = if flags & DATES_FOLLOW != 0 {
            Dates {
                package_expires: from_days_ce(d)?,
                contract_expires: from_days_ce(d)?,
                lease_expires: from_days_ce(d)?,
                stay_until: from_days_ce(d)?,
            }
        } else {
            Dates::default()
        };
        let boxed = |v: Vec<String>| v.into_iter().map(Into::into).collect();
        let services = boxed(d.strs()?);
        let dnd = Dnd { all: d.bool()?, channels: d.u8()? };
        let status = d.sym(Status::parse)?;
        let prefs = boxed(d.strs()?);
        let channel_pref = match d.opt_str()? {
            Some(c) => Some(Channel::parse(c).ok_or_else(|| Bad(format!("unknown channel `{c}`")))?),
            None => None,
        };
        let s = SubscriberRecord {
            msisdn,
            customer_id,
            account_id,
            brand,
            tier,
            arpu_fen,
            join_date,
            birthday,
            corporate: flags & 1 != 0,
            foreign: flags & 2 != 0,
            employee: flags & 4 != 0,
            services,
            dnd,
            status,
            prefs,
            channel_pref,
            dates,
        };
        Ok(Profile::new(&s, known, names))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_read_digit_by_digit_as_chrono_reads_them() {
        use chrono::NaiveDate;
        let cases = [
            "2026-12-06",
            "2024-02-29",
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-32",
            "0000-01-01",
            "9999-12-31",
            "2026-1-5",
            "2026-01-5",
            "+2026-01-05",
            "2026/01/05",
            "2026-01-0x",
            "２０２６-01-05",
            "",
            "2026-01-05 ",
            " 2026-01-05",
        ];
        for c in cases {
            let chrono = NaiveDate::parse_from_str(c, "%Y-%m-%d").ok();
            assert_eq!(super::date(c).ok(), chrono, "{c:?}");
        }
    }

    #[test]
    fn a_profile_is_one_cache_line_and_keeps_what_its_record_says() {
        use super::*;
        assert_eq!(std::mem::size_of::<Profile>(), 64);
        assert_eq!(std::mem::align_of::<Profile>(), 64);
        let m = Msisdn::parse("13800138000").expect("a number");
        let mut names = Names::default();
        for (birthday, dnd, arpu) in [
            (None, Dnd::default(), 0),
            (Some((2, 29)), Dnd { all: true, channels: 0 }, -1),
            (
                Some((12, 31)),
                Dnd { all: false, channels: Channel::Sms.bit() | Channel::Call.bit() },
                i64::from(i32::MAX),
            ),
            (Some((1, 1)), Dnd { all: true, channels: Channel::Ivr.bit() }, i64::from(i32::MIN)),
        ] {
            let r = SubscriberRecord { birthday, dnd, arpu_fen: arpu, ..SubscriberRecord::unknown(m) };
            let p = Profile::new(&r, true, &mut names);
            assert_eq!((p.birthday(), p.dnd(), p.arpu_fen()), (birthday, dnd, arpu));
            let back = p.record(&names);
            assert_eq!((back.birthday, back.dnd, back.arpu_fen), (birthday, dnd, arpu));
        }
        // Out of a profile's range: refused where records and changes are read, with the field.
        assert!(check_arpu_fen(i64::from(i32::MAX) + 1).is_err_and(|e| e.starts_with("arpu_fen:")));
        let change = ProfileChange::from_json("arpu_fen", &serde_json::json!(3_000_000_000i64));
        assert!(change.is_err_and(|e| e.contains("out of range")), "a change beyond the range is refused");
    }
}
