//! The engine config (TOML). Every field is documented and unknown fields are refused, so a
//! typo in a config is an error at start, not a silently ignored setting. Sections that belong
//! to a module are declared there (`[scale]` and `[fluvio]` in `source::scale`, `[delivery]` in
//! `sink::deliver`, `[api]` in `api::admin`, `[checkpoint]` in `state::checkpoint`); this file
//! composes them and checks what spans sections. Relative paths are
//! relative to the working directory.

use crate::source::scale::{FluvioSection, ScaleSection};

use crate::contact::Channel;
use crate::rules::policy::GlobalPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A message that already says `file:line:col`.
    #[error("{0}")]
    Located(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub source: SourceSection,
    #[serde(default)]
    pub output: OutputSection,
    #[serde(default)]
    pub policy: PolicySection,
    /// Real delivery: the outbox and the gateways (SMS, call centre). Without it, actions only
    /// go to the output files.
    #[serde(default)]
    pub delivery: Option<crate::sink::deliver::DeliveryConfig>,
    /// The admin HTTP endpoint (`/metrics`, health, rules). Without it, no server is started.
    #[serde(default)]
    pub api: Option<crate::api::admin::ApiConfig>,
    /// The campaign report (`tidings replay --report`): what counts as a response for the lift.
    #[serde(default)]
    pub report: crate::report::ReportConfig,
    /// Checkpoints of the engine's state and the sources' positions; a restart resumes from the
    /// last good one. Without it, a restart starts over from the beginning of the input.
    #[serde(default)]
    pub checkpoint: Option<crate::state::checkpoint::CheckpointConfig>,
    /// Fluvio: the event topics (`source.kind = "fluvio"`) and the output topics.
    #[serde(default)]
    pub fluvio: Option<FluvioSection>,
    /// Several instances sharing the work by partition.
    #[serde(default)]
    pub scale: ScaleSection,
    /// `policy` checked and compiled by [`Config::load`].
    #[serde(skip)]
    pub resolved_policy: GlobalPolicy,
    /// Channel capacities from `policy.channels`, compiled by [`Config::load`].
    #[serde(skip)]
    pub capacity: crate::policy::Capacities,
}

/// Contact policy for every rule (rules and campaigns add their own in the rule files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Local quiet period, e.g. "22:00-08:00"; "" for none.
    pub quiet_hours: Spanned<String>,
    /// Statuses, segments and tiers no rule contacts unless it says `include:`.
    pub exclude: Vec<Spanned<String>>,
    /// Caps across all touchpoints (transactional messages excepted), e.g. ["3 per month"].
    pub caps: Vec<Spanned<String>>,
    /// At most one contact per channel within this window, e.g. "30m"; "0s" = per trigger.
    pub arbitration_window: Spanned<String>,
    /// Per channel: `sms`, `call`, `ivr`.
    pub channels: std::collections::BTreeMap<Spanned<String>, ChannelPolicy>,
    /// The number SMS go out from unless a campaign or rule names its own (`sender:`).
    pub sender: Spanned<String>,
    /// A reply answers the latest SMS sent from the number it was sent to within this window.
    pub reply_window: Spanned<String>,
    /// Unsubscribe by reply.
    pub unsubscribe: UnsubscribeSection,
}

/// `[policy.unsubscribe]`: what a subscriber replies to refuse more, what it refuses, the
/// footer that tells them how, and where refusals are journaled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnsubscribeSection {
    /// Keywords (a reply's first word, full-width and lower case folded): `TD`, `退订`, ...
    pub keywords: Vec<Spanned<String>>,
    /// What they refuse when the reply answers a known SMS: `campaign` (its campaign),
    /// `marketing` (every marketing SMS) or `all` (every non-transactional contact). A reply
    /// that answers no known SMS refuses all marketing.
    pub scope: Spanned<String>,
    /// Keywords that refuse every non-transactional contact whatever `scope` says.
    pub all_keywords: Vec<Spanned<String>>,
    /// Appended to every marketing SMS (counted in its length and parts); "" for none.
    pub footer: String,
    /// The opt-out journal (JSON Lines, one refusal a line, read at start: with the data
    /// directory's `optout.txt` it is the whole list). "" = `optouts.jsonl` in the checkpoint
    /// directory, or else in the output directory.
    pub journal: PathBuf,
}

impl Default for UnsubscribeSection {
    fn default() -> Self {
        let d = crate::rules::policy::Unsubscribe::default();
        let spanned = |v: &[Box<str>]| v.iter().map(|k| Spanned::new(0..0, k.to_string())).collect();
        UnsubscribeSection {
            keywords: spanned(&d.keywords),
            scope: Spanned::new(0..0, d.scope.as_str().into()),
            all_keywords: spanned(&d.all_keywords),
            footer: d.footer.into(),
            journal: PathBuf::new(),
        }
    }
}

impl Config {
    /// Where opt-outs are journaled (`None`: nowhere to keep them).
    pub fn optout_journal(&self) -> Option<PathBuf> {
        let j = &self.policy.unsubscribe.journal;
        if !j.as_os_str().is_empty() {
            return Some(j.clone());
        }
        match &self.checkpoint {
            Some(c) => Some(c.dir.join("optouts.jsonl")),
            None if !self.output.dir.as_os_str().is_empty() => Some(self.output.dir.join("optouts.jsonl")),
            None => None,
        }
    }
}

impl Config {
    /// Where governed deploys keep versions, changes and the audit log (`None`: deploys are
    /// not governed, or there is nowhere to keep them).
    pub fn deploy_dir(&self) -> Option<PathBuf> {
        let d = self.api.as_ref()?.deploy.as_ref()?;
        if !d.dir.as_os_str().is_empty() {
            return Some(d.dir.clone());
        }
        match &self.checkpoint {
            Some(c) => Some(c.dir.join("deploy")),
            None if !self.output.dir.as_os_str().is_empty() => Some(self.output.dir.join("deploy")),
            None => None,
        }
    }
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            quiet_hours: Spanned::new(0..0, "22:00-08:00".into()),
            exclude: ["suspended", "pre_cancel", "cancelled"]
                .iter()
                .map(|s| Spanned::new(0..0, s.to_string()))
                .collect(),
            caps: Vec::new(),
            arbitration_window: Spanned::new(0..0, "0s".into()),
            channels: Default::default(),
            sender: Spanned::new(0..0, "10086".into()),
            reply_window: Spanned::new(0..0, "72h".into()),
            unsubscribe: UnsubscribeSection::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelPolicy {
    /// Caps on this channel (transactional messages excepted).
    pub caps: Vec<Spanned<String>>,
    /// What the gateway takes: "200/s" for SMS submissions, "30/min" for call tasks.
    pub capacity: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Shards (threads owning subscribers); 0 = one per core.
    pub shards: usize,
    /// Events per batch handed to the shards.
    pub batch: usize,
    /// How late an event may arrive (event time) and still count before timers fire, e.g. "2m".
    pub allowed_lateness: String,
    /// The subscribers' local UTC offset, e.g. "+08:00".
    pub utc_offset: String,
    /// The longest window a rule may use; the state keeps no more, e.g. "62d".
    pub max_window: String,
    /// Longest accepted input line in bytes; longer lines are dead letters.
    pub max_line_bytes: usize,
    /// SCHED_FIFO priority (1-99) for the threads a waiting IVR caller depends on: the engine's
    /// and the API's. 0 (the default) leaves them to the ordinary scheduler. Needs
    /// CAP_SYS_NICE (or root); without it tidings says so once and runs as usual.
    pub realtime_priority: u8,
    /// How far ahead of event time one event may be and still be believed on its own ("off":
    /// no bound). Past it the event is held until `leap_quorum` distinct events agree (a stream
    /// resumed after an outage), or refused as a dead letter (`future`).
    pub max_ahead: String,
    /// Distinct events that must agree before event time moves on past `max_ahead`.
    pub leap_quorum: usize,
    /// Live sources: an event stamped further than this ahead of the host's clock is a dead
    /// letter (`future`) at once ("off": no check).
    pub max_ahead_of_wall: String,
    /// A larger step of event time is worked through in slices of this size (stops and requests
    /// are served between two of them).
    pub slice: String,
    /// `/readyz` fails once input has waited this long without a batch finishing.
    pub stall_after: String,
    /// Subscribers not in the reference data the engine holds state for at once (IVR callers,
    /// numbers in a stream); past it, the one seen least recently with nothing that protects a
    /// subscriber (contact history, a pending timer) is forgotten. See the README.
    pub unknown_subscribers: usize,
    /// Local days of funnel counts kept (`GET /v1/funnel`, in the checkpoint); older days are
    /// forgotten as new ones begin (at least 1).
    pub funnel_days: u32,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            shards: 0,
            batch: 1024,
            allowed_lateness: "2m".into(),
            utc_offset: "+08:00".into(),
            max_window: "62d".into(),
            max_line_bytes: crate::event::MAX_LINE_BYTES,
            realtime_priority: 0,
            max_ahead: "1d".into(),
            leap_quorum: 3,
            max_ahead_of_wall: "15m".into(),
            slice: "1h".into(),
            stall_after: "30s".into(),
            unknown_subscribers: crate::refdata::DEFAULT_UNKNOWN,
            funnel_days: crate::engine::funnel::DEFAULT_DAYS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// Rule files or directories.
    pub paths: Vec<PathBuf>,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection { paths: vec![PathBuf::from("rules")] }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Directory with subscribers.jsonl, cells.jsonl, calendar.jsonl, stores.jsonl. Empty with
    /// the generator source: the generator's own reference data is used.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SourceKind {
    Generator,
    Files,
    Stdin,
    /// The `[fluvio]` event topics (needs a build with the `fluvio` feature).
    Fluvio,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSection {
    /// generator | files | stdin | fluvio
    pub kind: SourceKind,
    /// Event files for `files` (merged by event time).
    pub files: Vec<PathBuf>,
    pub generator: GeneratorSection,
}

impl Default for SourceSection {
    fn default() -> Self {
        SourceSection { kind: SourceKind::Generator, files: Vec::new(), generator: GeneratorSection::default() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorSection {
    pub seed: u64,
    pub subscribers: usize,
    pub events: usize,
    /// First local day, YYYY-MM-DD.
    pub start: String,
    pub days: u32,
}

impl Default for GeneratorSection {
    fn default() -> Self {
        GeneratorSection { seed: 7, subscribers: 10_000, events: 200_000, start: "2026-11-24".into(), days: 1 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Directory for actions.jsonl, decisions.jsonl and dead_letters.jsonl ("" = none).
    pub dir: PathBuf,
    /// Also print actions to standard output.
    pub stdout: bool,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection { dir: PathBuf::from("out"), stdout: true }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: p.clone(), source })?;
        let mut cfg: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid { path: p.clone(), message: e.to_string() })?;
        cfg.check().map_err(|message| ConfigError::Invalid { path: p.clone(), message })?;
        cfg.resolve_policy(&p, &text).map_err(ConfigError::Located)?;
        Ok(cfg)
    }

    /// Compiles `policy` (read from `file`, whose text is `text`) into `resolved_policy` and
    /// `capacity`; an error says `file:line:col`.
    pub fn resolve_policy(&mut self, file: &str, text: &str) -> Result<(), String> {
        let (policy, capacity) = self.policy(file, text)?;
        self.resolved_policy = policy;
        // Each instance gets its share of every channel's capacity.
        self.capacity = capacity.map(|c| c.map(|rate| self.scale.divide(rate)));
        Ok(())
    }

    /// Checks values serde cannot (durations, offsets, dates): the first mistake.
    pub fn check(&self) -> Result<(), String> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }

    /// Every value serde cannot check that is wrong, each message naming its key first.
    pub fn problems(&self) -> Vec<String> {
        let kind = &self.source.kind;
        let checks = [
            self.lateness().err(),
            self.offset().err(),
            self.max_window().err(),
            self.guard().err(),
            self.max_ahead_of_wall().err(),
            self.slice().err(),
            self.stall_after().err(),
            matches!(kind, SourceKind::Generator).then(|| self.generator_start().err()).flatten(),
            (matches!(kind, SourceKind::Files) && self.source.files.is_empty())
                .then(|| "source.kind = \"files\" needs source.files".to_string()),
            self.report.check().err(),
            self.scale.check().err(),
            self.fluvio.as_ref().and_then(|f| f.check().err()),
            (matches!(kind, SourceKind::Fluvio) && self.fluvio.is_none())
                .then(|| "source.kind = \"fluvio\" needs a [fluvio] section".to_string()),
        ];
        // The generator's start is read in the configured offset: a bad offset is said once.
        let mut problems: Vec<String> = Vec::new();
        for p in checks.into_iter().flatten() {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
        problems
    }

    pub fn lateness(&self) -> Result<i64, String> {
        crate::time::parse_duration(&self.engine.allowed_lateness).map_err(|e| format!("engine.allowed_lateness: {e}"))
    }

    /// The event-time guard (`max_ahead`, `leap_quorum`).
    pub fn guard(&self) -> Result<crate::engine::GuardConfig, String> {
        let max_ahead = off_or_duration(&self.engine.max_ahead).map_err(|e| format!("engine.max_ahead: {e}"))?;
        if self.engine.leap_quorum == 0 {
            return Err("engine.leap_quorum: must be at least 1".into());
        }
        Ok(match max_ahead {
            Some(max_ahead) => crate::engine::GuardConfig { max_ahead, quorum: self.engine.leap_quorum },
            None => crate::engine::GuardConfig::OFF,
        })
    }

    /// A live source's bound against the host's clock (`None`: off).
    pub fn max_ahead_of_wall(&self) -> Result<Option<i64>, String> {
        off_or_duration(&self.engine.max_ahead_of_wall).map_err(|e| format!("engine.max_ahead_of_wall: {e}"))
    }

    pub fn slice(&self) -> Result<i64, String> {
        match crate::time::parse_duration(&self.engine.slice) {
            Ok(ms) if ms > 0 => Ok(ms),
            Ok(_) => Err("engine.slice: must be more than zero".into()),
            Err(e) => Err(format!("engine.slice: {e}")),
        }
    }

    pub fn stall_after(&self) -> Result<std::time::Duration, String> {
        let ms =
            crate::time::parse_duration(&self.engine.stall_after).map_err(|e| format!("engine.stall_after: {e}"))?;
        Ok(std::time::Duration::from_millis(ms.max(0) as u64))
    }

    pub fn max_window(&self) -> Result<i64, String> {
        crate::time::parse_duration(&self.engine.max_window).map_err(|e| format!("engine.max_window: {e}"))
    }

    /// How the rule pack is compiled for this config: its `engine.max_window` and its
    /// unsubscribe keywords.
    pub fn load_options(&self) -> Result<crate::rules::LoadOptions, String> {
        Ok(self.load_options_with(self.max_window()?))
    }

    /// [`Self::load_options`] with the longest window already read from the config.
    pub fn load_options_with(&self, max_window: i64) -> crate::rules::LoadOptions {
        crate::rules::LoadOptions {
            max_window,
            refusals: self.refusals(),
            footer: self.policy.unsubscribe.footer.as_str().into(),
        }
    }

    /// The unsubscribe keywords (`[policy.unsubscribe]`), normalised as replies are; one that
    /// is not a word is left out (the policy check says so).
    pub fn refusals(&self) -> Vec<Box<str>> {
        let u = &self.policy.unsubscribe;
        let words = u.keywords.iter().chain(&u.all_keywords).map(|k| crate::event::keyword(k.get_ref()));
        words.filter(|w| !w.is_empty()).map(|w| Box::from(w.as_str())).collect()
    }

    pub fn offset(&self) -> Result<chrono::FixedOffset, String> {
        crate::time::parse_offset(&self.engine.utc_offset)
            .ok_or_else(|| format!("engine.utc_offset: `{}` is not an offset like +08:00", self.engine.utc_offset))
    }

    pub fn shards(&self) -> usize {
        if self.engine.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.engine.shards
        }
    }

    /// Local midnight of the generator's first day, in epoch milliseconds.
    pub fn generator_start(&self) -> Result<i64, String> {
        let off = self.offset()?;
        let d = chrono::NaiveDate::parse_from_str(&self.source.generator.start, "%Y-%m-%d")
            .map_err(|_| format!("source.generator.start: `{}` is not YYYY-MM-DD", self.source.generator.start))?;
        let t = d.and_hms_opt(0, 0, 0).ok_or("bad date")?;
        Ok((t - chrono::TimeDelta::seconds(i64::from(off.local_minus_utc()))).and_utc().timestamp_millis())
    }
}

/// `file:line:col` of a span in a TOML text (line and column 1-based, column in characters).
fn at(file: &str, text: &str, span: std::ops::Range<usize>) -> String {
    let before = text.get(..span.start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{file}:{line}:{col}")
}

impl Config {
    /// The global contact policy and channel capacities, checked; errors say `file:line:col`.
    pub fn policy(&self, file: &str, text: &str) -> Result<(GlobalPolicy, crate::policy::Capacities), String> {
        use crate::policy::parse_rate;
        use crate::rules::policy::{Exclusion, QuietHours, parse_cap};
        let p = &self.policy;
        let err = |sp: &Spanned<String>, msg: String| format!("{}: {msg}", at(file, text, sp.span()));
        let quiet_hours = match p.quiet_hours.get_ref().trim() {
            "" => None,
            q => Some(QuietHours::parse(q).map_err(|e| err(&p.quiet_hours, format!("policy.quiet_hours: {e}")))?),
        };
        let mut g = GlobalPolicy { quiet_hours, ..GlobalPolicy::default() };
        g.exclude = p
            .exclude
            .iter()
            .map(|x| {
                Exclusion::parse(x.get_ref()).ok_or_else(|| {
                    // Global exclusions read only the profile: a derived attribute is the pack's,
                    // and its slots change with every reload.
                    let why = if x.get_ref().trim().starts_with("derived.") {
                        "derived attributes belong to the rule pack: exclude them in a rule's `exclude:`".to_string()
                    } else {
                        format!("one of: {}", crate::rules::policy::EXCLUDABLE.join(", "))
                    };
                    err(x, format!("policy.exclude: cannot exclude `{}` ({why})", x.get_ref()))
                })
            })
            .collect::<Result<_, _>>()?;
        let caps = |list: &[Spanned<String>], what: &str| -> Result<Vec<crate::rules::policy::Cap>, String> {
            list.iter().map(|c| parse_cap(c.get_ref()).map_err(|e| err(c, format!("{what}: {e}")))).collect()
        };
        g.caps = caps(&p.caps, "policy.caps")?;
        g.arbitration_window = crate::time::parse_duration(p.arbitration_window.get_ref())
            .map_err(|e| err(&p.arbitration_window, format!("policy.arbitration_window: {e}")))?;
        g.sender = crate::rules::policy::parse_sender(p.sender.get_ref())
            .map_err(|e| err(&p.sender, format!("policy.sender: {e}")))?;
        // Unwritten, the sender is the SMS gateway's own source (an SP's CMPP `src_id`, say),
        // so that an SMS goes out from, and replies are tied to, the number the gateway is
        // set up for; `10086` only when no gateway names one.
        let source = self.delivery.as_ref().and_then(|d| d.sms_source());
        if let (true, Some(s)) = (p.sender.span().is_empty(), source) {
            g.sender = crate::rules::policy::parse_sender(s)
                .map_err(|e| format!("{file}: [delivery] source `{s}` as the SMS sender: {e}"))?;
        }
        g.reply_window = match crate::time::parse_duration(p.reply_window.get_ref()) {
            Ok(ms) if ms > 0 => ms,
            Ok(_) => return Err(err(&p.reply_window, "policy.reply_window: must be longer than zero".into())),
            Err(e) => return Err(err(&p.reply_window, format!("policy.reply_window: {e}"))),
        };
        let u = &p.unsubscribe;
        let words = |list: &[Spanned<String>], what: &str| -> Result<Vec<Box<str>>, String> {
            list.iter()
                .map(|k| {
                    let w = crate::event::keyword(k.get_ref());
                    if w.is_empty() || k.get_ref().replace('\u{3000}', " ").split_whitespace().count() != 1 {
                        Err(err(k, format!("policy.unsubscribe.{what}: `{}` is not one word", k.get_ref())))
                    } else {
                        Ok(Box::<str>::from(w.as_str()))
                    }
                })
                .collect()
        };
        g.unsubscribe = crate::rules::policy::Unsubscribe {
            keywords: words(&u.keywords, "keywords")?,
            all_keywords: words(&u.all_keywords, "all_keywords")?,
            scope: crate::contact::OptOutScope::parse(u.scope.get_ref()).ok_or_else(|| {
                err(
                    &u.scope,
                    format!("policy.unsubscribe.scope: `{}` is not campaign, marketing or all", u.scope.get_ref()),
                )
            })?,
            footer: u.footer.as_str().into(),
        };
        let mut capacity = [None; Channel::COUNT];
        for (name, ch) in &p.channels {
            let c = Channel::parse(name.get_ref()).ok_or_else(|| {
                err(name, format!("policy.channels: unknown channel `{}` (sms, call, ivr)", name.get_ref()))
            })?;
            if !c.is_contact() {
                return Err(err(
                    name,
                    format!(
                        "policy.channels.{c}: an order is the subscriber's own request, not a contact: it has no channel caps or capacity"
                    ),
                ));
            }
            g.channel_caps[c as usize] = caps(&ch.caps, &format!("policy.channels.{c}.caps"))?;
            if let Some(r) = &ch.capacity {
                if c == Channel::Ivr {
                    return Err(err(
                        r,
                        "policy.channels.ivr.capacity: IVR answers are synchronous; limit them at the API".into(),
                    ));
                }
                capacity[c as usize] =
                    Some(parse_rate(r.get_ref()).map_err(|e| err(r, format!("policy.channels.{c}.capacity: {e}")))?);
            }
        }
        Ok((g, capacity))
    }
}

/// `off`, or a duration of more than zero.
fn off_or_duration(s: &str) -> Result<Option<i64>, String> {
    if s.trim() == "off" {
        return Ok(None);
    }
    match crate::time::parse_duration(s)? {
        ms if ms > 0 => Ok(Some(ms)),
        _ => Err("must be more than zero (or \"off\")".into()),
    }
}
