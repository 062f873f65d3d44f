//! What the `[delivery.*]` sections of the gateway protocols read alike: the zone of login
//! timestamps, and fixed-width ASCII fields checked against their widths. (Durations are read by
//! [`crate::time::duration_serde`], the text coding by [`crate::sink::wire::Coding`] itself.)

use super::LinkError;
use serde::{Deserialize, Deserializer};

/// An offset like "+08:00".
pub fn offset<'de, D: Deserializer<'de>>(d: D) -> Result<chrono::FixedOffset, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| serde::de::Error::custom(format!("timezone {s:?} is not an offset like \"+08:00\"")))
}

/// Beijing time, the zone the operators' gateways keep.
pub fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00 is in range")
}

/// Each (name, value, width): at most `width` ASCII characters.
pub fn widths(protocol: &'static str, fields: &[(&str, &str, usize)]) -> Result<(), LinkError> {
    for (name, value, max) in fields {
        if value.len() > *max || !value.is_ascii() {
            let why = format!("{name} must be at most {max} ASCII characters");
            return Err(LinkError::Config { protocol, why });
        }
    }
    Ok(())
}

/// The commented `# [delivery.NAME]` example of `config/delivery.example.toml`, uncommented, for
/// the tests that check it is a valid config.
#[cfg(test)]
pub fn example_section(name: &str) -> String {
    let text = include_str!("../../../config/delivery.example.toml");
    let header = format!("# [delivery.{name}]");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{}\n", l.trim_start_matches("# ")))
        .collect()
}
