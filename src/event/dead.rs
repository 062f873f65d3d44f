//! Dead letters: records the engine could not take, kept with the reason so nothing is lost.

use serde::Serialize;

/// Why a record became a dead letter. The text forms are stable: operators grep for them and
/// the metric `tidings_dead_letters_total{reason=...}` uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Not valid JSON, or not a JSON object.
    BadJson,
    /// Bytes that are not UTF-8.
    BadUtf8,
    /// Longer than the line limit.
    TooLong,
    /// `kind` is missing or not one the engine knows.
    UnknownKind,
    /// A field the kind requires is absent.
    MissingField,
    /// A field has the wrong type or an unknown value.
    BadField,
    /// `msisdn` is not 5 to 15 digits.
    BadMsisdn,
    /// `ts` is not RFC 3339 with an offset.
    BadTs,
    /// `ts` lies too far ahead of event time (or, on a live source, of the host's clock) to be
    /// believed: it would move event time on by itself (`[engine] max_ahead`). Kept whole.
    Future,
}

impl DeadReason {
    pub const ALL: [DeadReason; 9] = [
        DeadReason::BadJson,
        DeadReason::BadUtf8,
        DeadReason::TooLong,
        DeadReason::UnknownKind,
        DeadReason::MissingField,
        DeadReason::BadField,
        DeadReason::BadMsisdn,
        DeadReason::BadTs,
        DeadReason::Future,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::BadJson => "bad_json",
            DeadReason::BadUtf8 => "bad_utf8",
            DeadReason::TooLong => "too_long",
            DeadReason::UnknownKind => "unknown_kind",
            DeadReason::MissingField => "missing_field",
            DeadReason::BadField => "bad_field",
            DeadReason::BadMsisdn => "bad_msisdn",
            DeadReason::BadTs => "bad_ts",
            DeadReason::Future => "future",
        }
    }
}

/// A rejected record, as written to the dead-letter file (one JSON object per line).
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub reason: DeadReason,
    pub detail: String,
    pub source: String,
    pub line: u64,
    /// The raw record, lossily decoded and truncated to [`RAW_KEEP`] bytes.
    pub raw: String,
    /// Set when `raw` was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// How much of a rejected record the dead letter keeps.
pub const RAW_KEEP: usize = 1024;

impl DeadLetter {
    /// A dead letter that keeps the whole record (input lines are bounded by the line limit):
    /// one refused for its time is a good record that may be fed again once the cause is known.
    pub fn whole(reason: DeadReason, detail: impl Into<String>, source: &str, line: u64, raw: &[u8]) -> DeadLetter {
        DeadLetter {
            reason,
            detail: detail.into(),
            source: source.to_string(),
            line,
            raw: String::from_utf8_lossy(raw).into_owned(),
            truncated: false,
        }
    }

    pub fn new(reason: DeadReason, detail: impl Into<String>, source: &str, line: u64, raw: &[u8]) -> DeadLetter {
        let truncated = raw.len() > RAW_KEEP;
        let mut keep = &raw[..raw.len().min(RAW_KEEP)];
        // Do not cut a UTF-8 sequence in half when the input was text.
        if truncated && std::str::from_utf8(raw).is_ok() {
            while std::str::from_utf8(keep).is_err() {
                keep = &keep[..keep.len() - 1];
            }
        }
        DeadLetter {
            reason,
            detail: detail.into(),
            source: source.to_string(),
            line,
            raw: String::from_utf8_lossy(keep).into_owned(),
            truncated,
        }
    }
}
