//! What a condition can read: every field, its type, and which event kinds carry it. The
//! checker resolves names against this table once; the compiled [`Field`] reads the value.

use super::{Ctx, Value};
use crate::contact::Channel;
use crate::event::{self, Body, Event, Kind, KindSet};
use crate::refdata::{Brand, Status, Tier};
use std::borrow::Cow;

/// The enumerated types, so literals like `voice` or `high` resolve at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymTy {
    Kind,
    Service,
    Direction,
    Scope,
    TopupChannel,
    IvrStep,
    LocTrigger,
    Brand,
    Tier,
    Status,
    Channel,
    OutcomeStatus,
}

impl SymTy {
    pub fn names(self) -> &'static [&'static str] {
        match self {
            SymTy::Kind => Kind::NAMES,
            SymTy::Service => event::Service::NAMES,
            SymTy::Direction => event::Direction::NAMES,
            SymTy::Scope => event::Scope::NAMES,
            SymTy::TopupChannel => event::TopupChannel::NAMES,
            SymTy::IvrStep => event::IvrStep::NAMES,
            SymTy::LocTrigger => event::LocTrigger::NAMES,
            SymTy::Brand => Brand::NAMES,
            SymTy::Tier => Tier::NAMES,
            SymTy::Status => Status::NAMES,
            SymTy::Channel => Channel::NAMES,
            SymTy::OutcomeStatus => event::OutcomeStatus::NAMES,
        }
    }

    /// What a value of the type is, for messages ("cannot compare a top-up channel with a
    /// brand").
    pub fn name(self) -> &'static str {
        match self {
            SymTy::Kind => "an event kind",
            SymTy::Service => "a service",
            SymTy::Direction => "a direction",
            SymTy::Scope => "a usage scope",
            SymTy::TopupChannel => "a top-up channel",
            SymTy::IvrStep => "an IVR step",
            SymTy::LocTrigger => "a location trigger",
            SymTy::Brand => "a brand",
            SymTy::Tier => "a tier",
            SymTy::Status => "a subscriber status",
            SymTy::Channel => "a contact channel",
            SymTy::OutcomeStatus => "an outcome status",
        }
    }

    pub fn index(self, name: &str) -> Option<u8> {
        self.names().iter().position(|n| *n == name).map(|i| i as u8)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    /// Fen.
    Money,
    /// Milliseconds.
    Duration,
    /// Event time, milliseconds since the epoch.
    Time,
    Str,
    Sym(SymTy),
    /// A list of strings (services, prefs).
    List,
    /// A set of cell tags.
    Tags,
    /// Untyped JSON (crm `attrs`): compares with anything.
    Dyn,
    Null,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Bool => "a boolean",
            Ty::Int => "a number",
            Ty::Money => "money",
            Ty::Duration => "a duration",
            Ty::Time => "a time",
            Ty::Str => "a string",
            Ty::Sym(t) => t.name(),
            Ty::List => "a list",
            Ty::Tags => "a set of cell tags",
            Ty::Dyn => "an attribute",
            Ty::Null => "null",
        }
    }
}

/// A readable field. Each variant knows how to read itself from a [`Ctx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    EvKind,
    EvTs,
    EvId,
    EvMsisdn,
    Service,
    Direction,
    Scope,
    Peer,
    DurationS,
    VolumeKb,
    Count,
    ChargeFen,
    EvBalanceFen,
    EvCell,
    Via,
    AmountFen,
    TopupChannel,
    Store,
    Session,
    Step,
    Node,
    Hotline,
    Trigger,
    Country,
    CrmEvent,
    OutActionId,
    OutChannel,
    OutStatus,
    OutRule,
    OutCampaign,
    OutDetail,
    ReplyText,
    ReplyTo,
    ReplyGateway,
    ReplyKeyword,
    ReplyUnsubscribe,
    InReplyKnown,
    InReplyRule,
    InReplyCampaign,
    InReplyActionId,
    InReplyAge,
    InReplyAbout,
    SubMsisdn,
    CustomerId,
    AccountId,
    Brand,
    Tier,
    ArpuFen,
    Corporate,
    Foreign,
    Employee,
    Services,
    Prefs,
    Dnd,
    DndSms,
    DndCall,
    Status,
    ChannelPref,
    Known,
    TenureDays,
    DaysToBirthday,
    IsBirthday,
    PackageExpires,
    DaysToPackageExpiry,
    ContractExpires,
    DaysToContractExpiry,
    LeaseExpires,
    DaysToLeaseExpiry,
    StayUntil,
    DaysToStayEnd,
    TenureYears,
    IsJoinAnniversary,
    CutoverTitle,
    CutoverStart,
    CutoverDays,
    FanEventTitle,
    FanEventArtist,
    FanEventPlace,
    FanEventStart,
    FanEventDays,
    Balance,
    PrevBalance,
    LastTopupAt,
    LastTopupFen,
    LastEventAt,
    LastUsageAt,
    IvrAgentRepeats,
    IvrLastNode,
    CellId,
    CellName,
    CellTags,
    CellKnown,
    CellSince,
    PrevCellId,
    PrevCellTags,
    StoreName,
    StoreId,
    StoreAddress,
    StoreDistanceM,
    CalActive,
    CalName,
    CalTitle,
    CalKind,
    CalVenue,
    CalArtist,
    Festival,
    CountryCode,
    CountryName,
    CountryVoiceFen,
    CountrySmsFen,
    CountryDataFen,
    CountryDayPackFen,
    Hour,
    Minute,
    Weekday,
    Day,
    Month,
    MonthDay,
    Now,
    /// A derived attribute (`derived.NAME`), by its slot.
    Derived(u16),
}

const U: u8 = 1 << Kind::Usage as u8;
const T: u8 = 1 << Kind::Topup as u8;
const I: u8 = 1 << Kind::Ivr as u8;
const L: u8 = 1 << Kind::Location as u8;
const C: u8 = 1 << Kind::Crm as u8;
const O: u8 = 1 << Kind::Outcome as u8;
const R: u8 = 1 << Kind::Reply as u8;
const ALL: u8 = 0xff;
/// Not an event field: readable in every rule, and on timers.
const ANY: u8 = 0;

/// (path, type, field, event kinds that carry it; `ANY` for non-event fields)
pub const FIELDS: &[(&str, Ty, Field, u8)] = &[
    ("event.kind", Ty::Sym(SymTy::Kind), Field::EvKind, ALL),
    ("event.ts", Ty::Time, Field::EvTs, ALL),
    ("event.id", Ty::Str, Field::EvId, ALL),
    ("event.msisdn", Ty::Str, Field::EvMsisdn, ALL),
    ("event.service", Ty::Sym(SymTy::Service), Field::Service, U),
    ("event.direction", Ty::Sym(SymTy::Direction), Field::Direction, U),
    ("event.scope", Ty::Sym(SymTy::Scope), Field::Scope, U),
    ("event.peer", Ty::Str, Field::Peer, U),
    ("event.duration_s", Ty::Duration, Field::DurationS, U),
    ("event.volume_kb", Ty::Int, Field::VolumeKb, U),
    ("event.count", Ty::Int, Field::Count, U),
    ("event.charge_fen", Ty::Money, Field::ChargeFen, U),
    ("event.balance_fen", Ty::Money, Field::EvBalanceFen, U | T),
    ("event.cell", Ty::Str, Field::EvCell, U | L),
    ("event.via", Ty::Str, Field::Via, U),
    ("event.amount_fen", Ty::Money, Field::AmountFen, T),
    ("event.channel", Ty::Sym(SymTy::TopupChannel), Field::TopupChannel, T),
    ("event.store", Ty::Str, Field::Store, T),
    ("event.session", Ty::Str, Field::Session, I),
    ("event.step", Ty::Sym(SymTy::IvrStep), Field::Step, I),
    ("event.node", Ty::Str, Field::Node, I),
    ("event.hotline", Ty::Str, Field::Hotline, I),
    ("event.trigger", Ty::Sym(SymTy::LocTrigger), Field::Trigger, L),
    ("event.country", Ty::Str, Field::Country, L),
    ("event.event", Ty::Str, Field::CrmEvent, C),
    ("event.action_id", Ty::Str, Field::OutActionId, O),
    ("event.contact_channel", Ty::Sym(SymTy::Channel), Field::OutChannel, O),
    ("event.status", Ty::Sym(SymTy::OutcomeStatus), Field::OutStatus, O),
    ("event.rule", Ty::Str, Field::OutRule, O),
    ("event.campaign", Ty::Str, Field::OutCampaign, O),
    ("event.detail", Ty::Str, Field::OutDetail, O),
    ("event.text", Ty::Str, Field::ReplyText, R),
    ("event.to", Ty::Str, Field::ReplyTo, R),
    ("event.gateway", Ty::Str, Field::ReplyGateway, R),
    ("event.keyword", Ty::Str, Field::ReplyKeyword, R),
    ("event.unsubscribe", Ty::Str, Field::ReplyUnsubscribe, R),
    ("event.in_reply_to.known", Ty::Bool, Field::InReplyKnown, R),
    ("event.in_reply_to.rule", Ty::Str, Field::InReplyRule, R),
    ("event.in_reply_to.campaign", Ty::Str, Field::InReplyCampaign, R),
    ("event.in_reply_to.action_id", Ty::Str, Field::InReplyActionId, R),
    ("event.in_reply_to.age", Ty::Duration, Field::InReplyAge, R),
    ("event.in_reply_to.about", Ty::Str, Field::InReplyAbout, R),
    ("subscriber.msisdn", Ty::Str, Field::SubMsisdn, ANY),
    ("subscriber.customer_id", Ty::Str, Field::CustomerId, ANY),
    ("subscriber.account_id", Ty::Str, Field::AccountId, ANY),
    ("subscriber.brand", Ty::Sym(SymTy::Brand), Field::Brand, ANY),
    ("subscriber.tier", Ty::Sym(SymTy::Tier), Field::Tier, ANY),
    ("subscriber.arpu_fen", Ty::Money, Field::ArpuFen, ANY),
    ("subscriber.corporate", Ty::Bool, Field::Corporate, ANY),
    ("subscriber.foreign", Ty::Bool, Field::Foreign, ANY),
    ("subscriber.employee", Ty::Bool, Field::Employee, ANY),
    ("subscriber.services", Ty::List, Field::Services, ANY),
    ("subscriber.prefs", Ty::List, Field::Prefs, ANY),
    ("subscriber.dnd", Ty::Bool, Field::Dnd, ANY),
    ("subscriber.dnd_sms", Ty::Bool, Field::DndSms, ANY),
    ("subscriber.dnd_call", Ty::Bool, Field::DndCall, ANY),
    ("subscriber.status", Ty::Sym(SymTy::Status), Field::Status, ANY),
    ("subscriber.channel_pref", Ty::Sym(SymTy::Channel), Field::ChannelPref, ANY),
    ("subscriber.known", Ty::Bool, Field::Known, ANY),
    ("subscriber.tenure_days", Ty::Int, Field::TenureDays, ANY),
    ("subscriber.days_to_birthday", Ty::Int, Field::DaysToBirthday, ANY),
    ("subscriber.is_birthday", Ty::Bool, Field::IsBirthday, ANY),
    ("subscriber.package_expires", Ty::Time, Field::PackageExpires, ANY),
    ("subscriber.days_to_package_expiry", Ty::Int, Field::DaysToPackageExpiry, ANY),
    ("subscriber.contract_expires", Ty::Time, Field::ContractExpires, ANY),
    ("subscriber.days_to_contract_expiry", Ty::Int, Field::DaysToContractExpiry, ANY),
    ("subscriber.lease_expires", Ty::Time, Field::LeaseExpires, ANY),
    ("subscriber.days_to_lease_expiry", Ty::Int, Field::DaysToLeaseExpiry, ANY),
    ("subscriber.stay_until", Ty::Time, Field::StayUntil, ANY),
    ("subscriber.days_to_stay_end", Ty::Int, Field::DaysToStayEnd, ANY),
    ("subscriber.tenure_years", Ty::Int, Field::TenureYears, ANY),
    ("subscriber.is_join_anniversary", Ty::Bool, Field::IsJoinAnniversary, ANY),
    ("subscriber.balance", Ty::Money, Field::Balance, ANY),
    ("state.balance", Ty::Money, Field::Balance, ANY),
    ("state.prev_balance", Ty::Money, Field::PrevBalance, ANY),
    ("state.last_topup_at", Ty::Time, Field::LastTopupAt, ANY),
    ("state.last_topup_fen", Ty::Money, Field::LastTopupFen, ANY),
    ("state.last_event_at", Ty::Time, Field::LastEventAt, ANY),
    ("state.last_usage_at", Ty::Time, Field::LastUsageAt, ANY),
    ("state.ivr_agent_repeats", Ty::Int, Field::IvrAgentRepeats, I),
    ("state.ivr_last_node", Ty::Str, Field::IvrLastNode, ANY),
    ("cell.id", Ty::Str, Field::CellId, ANY),
    ("cell.name", Ty::Str, Field::CellName, ANY),
    ("cell.tags", Ty::Tags, Field::CellTags, ANY),
    ("cell.known", Ty::Bool, Field::CellKnown, ANY),
    ("cell.since", Ty::Time, Field::CellSince, ANY),
    ("prev_cell.id", Ty::Str, Field::PrevCellId, ANY),
    ("prev_cell.tags", Ty::Tags, Field::PrevCellTags, ANY),
    ("nearest_store.name", Ty::Str, Field::StoreName, ANY),
    ("nearest_store.id", Ty::Str, Field::StoreId, ANY),
    ("nearest_store.address", Ty::Str, Field::StoreAddress, ANY),
    ("nearest_store.distance_m", Ty::Int, Field::StoreDistanceM, ANY),
    ("calendar.active", Ty::Bool, Field::CalActive, ANY),
    ("calendar.name", Ty::Str, Field::CalName, ANY),
    ("calendar.title", Ty::Str, Field::CalTitle, ANY),
    ("calendar.kind", Ty::Str, Field::CalKind, ANY),
    ("calendar.venue", Ty::Str, Field::CalVenue, ANY),
    ("calendar.artist", Ty::Str, Field::CalArtist, ANY),
    ("calendar.festival", Ty::Str, Field::Festival, ANY),
    ("cutover.title", Ty::Str, Field::CutoverTitle, ANY),
    ("cutover.start", Ty::Time, Field::CutoverStart, ANY),
    ("cutover.days_until", Ty::Int, Field::CutoverDays, ANY),
    ("fan_event.title", Ty::Str, Field::FanEventTitle, ANY),
    ("fan_event.artist", Ty::Str, Field::FanEventArtist, ANY),
    ("fan_event.place", Ty::Str, Field::FanEventPlace, ANY),
    ("fan_event.start", Ty::Time, Field::FanEventStart, ANY),
    ("fan_event.days_until", Ty::Int, Field::FanEventDays, ANY),
    ("country.code", Ty::Str, Field::CountryCode, ANY),
    ("country.name", Ty::Str, Field::CountryName, ANY),
    ("country.voice_fen", Ty::Money, Field::CountryVoiceFen, ANY),
    ("country.sms_fen", Ty::Money, Field::CountrySmsFen, ANY),
    ("country.data_fen", Ty::Money, Field::CountryDataFen, ANY),
    ("country.day_pack_fen", Ty::Money, Field::CountryDayPackFen, ANY),
    ("local.hour", Ty::Int, Field::Hour, ANY),
    ("local.minute", Ty::Int, Field::Minute, ANY),
    ("local.weekday", Ty::Int, Field::Weekday, ANY),
    ("local.day", Ty::Int, Field::Day, ANY),
    ("local.month", Ty::Int, Field::Month, ANY),
    ("local.month_day", Ty::Str, Field::MonthDay, ANY),
    ("now", Ty::Time, Field::Now, ANY),
];

/// The roots a path may start with (for "did you mean" on the first segment).
pub const ROOTS: &[&str] = &[
    "event",
    "armed",
    "subscriber",
    "state",
    "cell",
    "prev_cell",
    "nearest_store",
    "calendar",
    "cutover",
    "fan_event",
    "local",
    "now",
    "derived",
];

/// Looks a path up: its type, field and the kinds that carry it (`None` = not an event field).
pub fn lookup(path: &str) -> Option<(Ty, Field, Option<KindSet>)> {
    FIELDS
        .iter()
        .find(|f| f.0 == path)
        .map(|&(_, ty, field, kinds)| (ty, field, (kinds != ANY).then_some(KindSet(kinds))))
}

fn opt_str<S: std::ops::Deref<Target = str>>(s: &Option<S>) -> Value<'_> {
    s.as_deref().map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s)))
}

impl Value<'_> {
    /// Zero means "not offered": read it as missing.
    fn into_positive(self) -> Self {
        match self {
            Value::Int(n) if n <= 0 => Value::Null,
            v => v,
        }
    }
}

impl Field {
    pub fn read<'a>(self, cx: &Ctx<'a>) -> Value<'a> {
        use Field as F;
        let ev = cx.event;
        let body = ev.map(|e| &e.body);
        let sub = cx.sub;
        let st = cx.state;
        let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
        let sym = |v: u8| Value::Sym(v);
        // Looked up only by the fields that need them: this runs for every field read.
        let cell = || st.cell_ref(cx.refdata);
        let store = || {
            cell().and_then(|c| c.nearest_store).and_then(|(i, d)| cx.refdata.stores.get(i as usize).map(|s| (s, d)))
        };
        let cal = || cx.calendar_here();
        let country = || st.country().and_then(|c| cx.refdata.countries.get(c));
        match self {
            F::EvKind
            | F::EvTs
            | F::EvId
            | F::Service
            | F::Direction
            | F::Scope
            | F::Peer
            | F::DurationS
            | F::VolumeKb
            | F::Count
            | F::ChargeFen
            | F::EvBalanceFen
            | F::EvCell
            | F::Via
            | F::AmountFen
            | F::TopupChannel
            | F::Store
            | F::Session
            | F::Step
            | F::Node
            | F::Hotline
            | F::Trigger
            | F::Country
            | F::CrmEvent
            | F::OutActionId
            | F::OutChannel
            | F::OutStatus
            | F::OutRule
            | F::OutCampaign
            | F::OutDetail
            | F::ReplyText
            | F::ReplyTo
            | F::ReplyGateway
            | F::ReplyKeyword
            | F::ReplyUnsubscribe
            | F::InReplyKnown
            | F::InReplyRule
            | F::InReplyCampaign
            | F::InReplyActionId
            | F::InReplyAge
            | F::InReplyAbout => self.read_event(ev),
            F::EvMsisdn | F::SubMsisdn => Value::Str(Cow::Owned(sub.msisdn.full())),
            F::CustomerId => Value::Str(Cow::Borrowed(cx.names.get(sub.customer_id))),
            F::AccountId => Value::Str(Cow::Borrowed(cx.names.get(sub.account_id))),
            F::Brand if sub.known() => sym(sub.brand as u8),
            F::Tier if sub.known() => sym(sub.tier as u8),
            F::Brand | F::Tier => Value::Null,
            F::ArpuFen => Value::Int(sub.arpu_fen()),
            F::Corporate => Value::Bool(sub.corporate()),
            F::Foreign => Value::Bool(sub.foreign()),
            F::Employee => Value::Bool(sub.employee()),
            F::Services => Value::List(&sub.services, &cx.names.services),
            F::Prefs => Value::List(&sub.prefs, &cx.names.prefs),
            F::Dnd => Value::Bool(sub.dnd().any()),
            F::DndSms => Value::Bool(sub.dnd().blocks(Channel::Sms)),
            F::DndCall => Value::Bool(sub.dnd().blocks(Channel::Call)),
            F::Status => sym(sub.status as u8),
            F::ChannelPref => sub.channel_pref.map_or(Value::Null, |c| sym(c as u8)),
            F::Known => Value::Bool(sub.known()),
            F::TenureDays => sub.join_date.map_or(Value::Null, |d| Value::Int(cx.days_since(d))),
            F::DaysToBirthday => sub.birthday().map_or(Value::Null, |b| Value::Int(cx.days_to_anniversary(b))),
            F::IsBirthday => Value::Bool(cx.birthday_today(sub)),
            F::PackageExpires
            | F::DaysToPackageExpiry
            | F::ContractExpires
            | F::DaysToContractExpiry
            | F::LeaseExpires
            | F::DaysToLeaseExpiry
            | F::StayUntil
            | F::DaysToStayEnd
            | F::TenureYears
            | F::IsJoinAnniversary
            | F::CutoverTitle
            | F::CutoverStart
            | F::CutoverDays
            | F::FanEventTitle
            | F::FanEventArtist
            | F::FanEventPlace
            | F::FanEventStart
            | F::FanEventDays => self.read_dated(cx).unwrap_or(Value::Null),
            F::Balance => int(st.balance()),
            F::PrevBalance => int(st.prev_balance()),
            F::LastTopupAt => int(st.last_topup().map(|t| t.0)),
            F::LastTopupFen => int(st.last_topup().map(|t| t.1)),
            F::LastEventAt => int(st.last_event_at()),
            F::LastUsageAt => int(st.last_usage_at()),
            F::IvrAgentRepeats => match body {
                Some(Body::Ivr(i)) => i
                    .node
                    .as_deref()
                    .map_or(Value::Int(0), |n| Value::Int(st.ivr_agent_at(n, 7 * crate::time::DAY, cx.now))),
                _ => Value::Null,
            },
            F::IvrLastNode => st
                .ivr_last_node(matches!(body, Some(Body::Ivr(_))))
                .map_or(Value::Null, |n| Value::Str(Cow::Borrowed(n))),
            F::CellId => st.cell_id_str(cx.refdata).map_or(Value::Null, |s| Value::Str(Cow::Borrowed(s))),
            F::CellName => cell().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.name))),
            F::CellTags => Value::Tags(st.known_cell().map_or(&[][..], |c| cx.refdata.cell_tags(c))),
            F::CellKnown => Value::Bool(cell().is_some()),
            F::CellSince => int(st.cell_since()),
            F::PrevCellId => st
                .prev_cell()
                .and_then(|c| cx.refdata.cells.get(c as usize))
                .map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.id))),
            F::PrevCellTags => Value::Tags(st.prev_cell().map_or(&[][..], |c| cx.refdata.cell_tags(c))),
            F::StoreName => store().map_or(Value::Null, |(s, _)| Value::Str(Cow::Borrowed(&s.name))),
            F::StoreId => store().map_or(Value::Null, |(s, _)| Value::Str(Cow::Borrowed(&s.id))),
            F::StoreAddress => store().map_or(Value::Null, |(s, _)| Value::Str(Cow::Borrowed(&s.address))),
            F::StoreDistanceM => store().map_or(Value::Null, |(_, d)| Value::Int(i64::from(d))),
            F::CalActive => Value::Bool(cal().is_some()),
            F::CalName => cal().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.name))),
            F::CalTitle => cal().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.title))),
            F::CalKind => cal().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.kind))),
            F::CalVenue => {
                cal().and_then(|c| c.venue).map_or(Value::Null, |v| Value::Str(Cow::Borrowed(cx.refdata.tag_name(v))))
            }
            F::CalArtist => {
                cal().and_then(|c| c.artist.as_deref()).map_or(Value::Null, |a| Value::Str(Cow::Borrowed(a)))
            }
            F::Festival => cx.refdata.festival_at(cx.now).map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.title))),
            F::CountryCode => st.country().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(c))),
            F::CountryName => country().map_or(Value::Null, |c| Value::Str(Cow::Borrowed(&c.name))),
            F::CountryVoiceFen => country().map_or(Value::Null, |c| Value::Int(c.voice_fen)),
            F::CountrySmsFen => country().map_or(Value::Null, |c| Value::Int(c.sms_fen)),
            F::CountryDataFen => country().map_or(Value::Null, |c| Value::Int(c.data_fen)),
            F::CountryDayPackFen => country().map_or(Value::Null, |c| Value::Int(c.day_pack_fen).into_positive()),
            F::Hour => Value::Int(i64::from(cx.local.hour)),
            F::Minute => Value::Int(i64::from(cx.local.minute)),
            F::Weekday => {
                use chrono::Datelike;
                Value::Int(i64::from(cx.local.date.weekday().number_from_monday()))
            }
            F::Day => {
                use chrono::Datelike;
                Value::Int(i64::from(cx.local.date.day()))
            }
            F::Month => {
                use chrono::Datelike;
                Value::Int(i64::from(cx.local.date.month()))
            }
            F::MonthDay => Value::Str(Cow::Owned(cx.local.date.format("%m-%d").to_string())),
            F::Now => Value::Int(cx.now),
            F::Derived(slot) => match st.derived_value(slot).map(|d| d.value()) {
                None => Value::Null,
                Some(crate::state::DVal::Int(n)) => Value::Int(n),
                Some(crate::state::DVal::Bool(b)) => Value::Bool(b),
                Some(crate::state::DVal::Sym(v)) => Value::Sym(v),
            },
        }
    }

    /// Whether the field is read from the event itself (see [`Field::read_event`]).
    pub fn is_event_field(self) -> bool {
        FIELDS.iter().any(|(path, _, f, _)| *f == self && path.starts_with("event.")) && self != Field::EvMsisdn
    }

    /// The value of a field the event carries (`Null` for any other field, or without an
    /// event): what the rule index reads before any rule is evaluated.
    #[inline(always)]
    pub fn read_event(self, ev: Option<&Event>) -> Value<'_> {
        use Field as F;
        let body = ev.map(|e| &e.body);
        let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
        let sym = |v: u8| Value::Sym(v);
        match self {
            F::EvKind => ev.map_or(Value::Null, |e| sym(e.kind() as u8)),
            F::EvTs => ev.map_or(Value::Null, |e| Value::Int(e.ts)),
            F::EvId => ev.map_or(Value::Null, |e| Value::Str(Cow::Borrowed(&e.id))),
            F::Service => match body {
                Some(Body::Usage(u)) => sym(u.service as u8),
                _ => Value::Null,
            },
            F::Direction => match body {
                Some(Body::Usage(u)) => sym(u.direction as u8),
                _ => Value::Null,
            },
            F::Scope => match body {
                Some(Body::Usage(u)) => sym(u.scope as u8),
                _ => Value::Null,
            },
            F::Peer => match body {
                Some(Body::Usage(u)) => opt_str(&u.peer),
                _ => Value::Null,
            },
            F::DurationS => match body {
                Some(Body::Usage(u)) => Value::Int(u.duration_s * 1000),
                _ => Value::Null,
            },
            F::VolumeKb => match body {
                Some(Body::Usage(u)) => Value::Int(u.volume_kb),
                _ => Value::Null,
            },
            F::Count => match body {
                Some(Body::Usage(u)) => Value::Int(u.count),
                _ => Value::Null,
            },
            F::ChargeFen => match body {
                Some(Body::Usage(u)) => Value::Int(u.charge_fen),
                _ => Value::Null,
            },
            F::EvBalanceFen => int(ev.and_then(|e| e.balance_fen())),
            F::EvCell => ev.and_then(|e| e.cell()).map_or(Value::Null, |c| Value::Str(Cow::Borrowed(c))),
            F::Via => match body {
                Some(Body::Usage(u)) => opt_str(&u.via),
                _ => Value::Null,
            },
            F::AmountFen => match body {
                Some(Body::Topup(t)) => Value::Int(t.amount_fen),
                _ => Value::Null,
            },
            F::TopupChannel => match body {
                Some(Body::Topup(t)) => sym(t.channel as u8),
                _ => Value::Null,
            },
            F::Store => match body {
                Some(Body::Topup(t)) => opt_str(&t.store),
                _ => Value::Null,
            },
            F::Session => match body {
                Some(Body::Ivr(i)) => Value::Str(Cow::Borrowed(&i.session)),
                _ => Value::Null,
            },
            F::Step => match body {
                Some(Body::Ivr(i)) => sym(i.step as u8),
                _ => Value::Null,
            },
            F::Node => match body {
                Some(Body::Ivr(i)) => opt_str(&i.node),
                _ => Value::Null,
            },
            F::Hotline => match body {
                Some(Body::Ivr(i)) => Value::Str(Cow::Borrowed(&i.hotline)),
                _ => Value::Null,
            },
            F::Trigger => match body {
                Some(Body::Location(l)) => sym(l.trigger as u8),
                _ => Value::Null,
            },
            F::Country => match body {
                Some(Body::Location(l)) => opt_str(&l.country),
                _ => Value::Null,
            },
            F::CrmEvent => match body {
                Some(Body::Crm(c)) => Value::Str(Cow::Borrowed(&c.event)),
                _ => Value::Null,
            },
            F::OutActionId | F::OutChannel | F::OutStatus | F::OutRule | F::OutCampaign | F::OutDetail => {
                let Some(Body::Outcome(o)) = body else { return Value::Null };
                match self {
                    F::OutActionId => Value::Str(Cow::Borrowed(&o.action_id)),
                    F::OutChannel => sym(o.channel as u8),
                    F::OutStatus => sym(o.status as u8),
                    F::OutRule => Value::Str(Cow::Borrowed(&o.rule)),
                    F::OutCampaign => Value::Str(Cow::Borrowed(&o.campaign)),
                    _ => opt_str(&o.detail),
                }
            }
            F::ReplyText
            | F::ReplyTo
            | F::ReplyGateway
            | F::ReplyKeyword
            | F::ReplyUnsubscribe
            | F::InReplyKnown
            | F::InReplyRule
            | F::InReplyCampaign
            | F::InReplyActionId
            | F::InReplyAge
            | F::InReplyAbout => {
                let Some(Body::Reply(r)) = body else { return Value::Null };
                let link = r.in_reply_to.as_deref();
                let link_str =
                    |f: fn(&event::InReplyTo) -> &str| link.map_or(Value::Null, |l| Value::Str(Cow::Borrowed(f(l))));
                match self {
                    F::ReplyText => Value::Str(Cow::Borrowed(&r.text)),
                    F::ReplyTo => Value::Str(Cow::Borrowed(&r.to)),
                    F::ReplyKeyword => Value::Str(Cow::Borrowed(&r.keyword)),
                    F::ReplyUnsubscribe => r.unsubscribe.map_or(Value::Null, |u| Value::Str(Cow::Borrowed(u.as_str()))),
                    F::InReplyKnown => Value::Bool(link.is_some()),
                    F::InReplyRule => link_str(|l| &l.rule),
                    F::InReplyCampaign => link_str(|l| &l.campaign),
                    F::InReplyActionId => link_str(|l| &l.action_id),
                    F::InReplyAge => link.map_or(Value::Null, |l| Value::Int(l.age)),
                    F::InReplyAbout => {
                        link.and_then(|l| l.about.as_deref()).map_or(Value::Null, |a| Value::Str(Cow::Borrowed(a)))
                    }
                    _ => opt_str(&r.gateway),
                }
            }
            _ => Value::Null,
        }
    }
}
