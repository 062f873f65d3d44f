//! A config file read so that every mistake in it is found at once, each at its
//! `file:line:col`. Serde stops at the first bad key; here that key is reported, blanked out of
//! the text (spaces in place of its bytes, so every other position stays where it was) and the
//! text parsed again, so the keys after it are checked too and a bad key takes its default for
//! the checks that follow. The checks serde cannot make (durations, offsets, dates) name the
//! key they are about first (`engine.slice: …`); that key's place in the file is where they
//! point.

use super::error::{ConfigError, ConfigErrors};
use crate::config::Config;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// More mistakes than this in one file are not worth a parse each.
const MAX_ERRORS: usize = 64;

/// A config file: its name, its text and where each key is written in it.
pub struct ConfigFile {
    path: String,
    text: String,
    keys: Table,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(name.clone()),
            line_col: None,
            message: e.to_string(),
        })?;
        Ok(ConfigFile::new(name, text))
    }

    /// The config file `name` whose text is `text`.
    pub fn new(name: String, text: String) -> ConfigFile {
        // A text that is not TOML has no keys to point at: its one error says where it breaks.
        let keys = toml::from_str(&text).unwrap_or_default();
        ConfigFile { path: name, text, keys }
    }

    /// The config at `path` with its policy compiled, or every mistake in it.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = ConfigFile::read(path)?;
        let (cfg, mut errors) = file.parse();
        if let Some(cfg) = &cfg {
            errors.extend(file.check(cfg));
        }
        match cfg {
            Some(cfg) if errors.is_empty() => Ok(cfg),
            _ => Err(ConfigErrors(errors).sorted()),
        }
    }

    /// Every value in `cfg` serde cannot check that is wrong (durations, offsets, dates), at
    /// its key.
    pub fn check(&self, cfg: &Config) -> Vec<ConfigError> {
        cfg.problems().into_iter().map(|m| self.about(m)).collect()
    }

    /// The config this file describes, its policy compiled, and every mistake serde and the
    /// policy find in it. A key serde refuses is left at its default, so that the config
    /// (`None` only when the text cannot be read as TOML at all) can still be checked further
    /// ([`ConfigFile::check`]).
    pub fn parse(&self) -> (Option<Config>, Vec<ConfigError>) {
        let mut text = self.text.clone();
        let mut errors = Vec::new();
        while errors.len() < MAX_ERRORS {
            let e = match toml::from_str::<Config>(&text) {
                Ok(mut cfg) => {
                    if let Err(located) = cfg.resolve_policy(&self.path, &self.text) {
                        errors.push(self.located(located));
                    }
                    return (Some(cfg), errors);
                }
                Err(e) => e,
            };
            let found = e.span().and_then(|s| self.keys.at(s.start, String::new()));
            let Some((name, key)) = found else {
                // Not a key's value (the text is not TOML, or a section lacks a key it needs):
                // said as the parser says it, and nothing after it can be checked.
                errors.push(ConfigError { file: Some(self.path.clone()), line_col: None, message: e.to_string() });
                return (None, errors);
            };
            errors.push(ConfigError {
                file: Some(self.path.clone()),
                line_col: Some(self.line_col(e.span().map_or(key.key.start, |s| s.start))),
                message: format!("{name}: {}", e.message().trim_end()),
            });
            if !key.inner.0.is_empty() {
                return (None, errors);
            }
            blank(&mut text, key.key.start..key.value.end);
        }
        (None, errors)
    }

    /// An error about the key `name` (`engine.slice`): at its value when the file writes it,
    /// else at the file (the default does not fit).
    pub fn error_at(&self, name: &str, message: String) -> ConfigError {
        let line_col = self.keys.find(name).map(|k| self.line_col(k.value.start));
        ConfigError { file: Some(self.path.clone()), line_col, message }
    }

    /// An error whose message names its key first (`engine.slice: must be more than zero`,
    /// `source.kind = "files" needs source.files`): at the longest part of that name the file
    /// writes.
    fn about(&self, message: String) -> ConfigError {
        let lead =
            message.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(message.len());
        let mut name = &message[..lead];
        while !name.is_empty() && self.keys.find(name).is_none() {
            name = name.rsplit_once('.').map_or("", |(head, _)| head);
        }
        let name = name.to_string();
        self.error_at(&name, message)
    }

    /// An error whose message starts with `file:line:col: ` (the policy's), taken apart so
    /// that it sorts with the others.
    fn located(&self, message: String) -> ConfigError {
        let place = message.strip_prefix(self.path.as_str()).and_then(|rest| {
            let mut parts = rest.strip_prefix(':')?.splitn(3, ':');
            let (line, col, rest) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
            Some(((line, col), rest.strip_prefix(' ')?.to_string()))
        });
        match place {
            Some((line_col, message)) => {
                ConfigError { file: Some(self.path.clone()), line_col: Some(line_col), message }
            }
            None => ConfigError { file: None, line_col: None, message },
        }
    }

    /// Line and column (1-based, the column in characters) of a byte offset in the text.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        (line, before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1)
    }
}

/// Spaces in place of `range`'s bytes (line breaks kept): the key is gone, and every position
/// after it is unchanged.
fn blank(text: &mut String, range: Range<usize>) {
    let Some(gone) = text.get(range.clone()) else { return };
    let spaces: String = gone.bytes().map(|b| if b == b'\n' || b == b'\r' { b as char } else { ' ' }).collect();
    text.replace_range(range, &spaces);
}

/// The keys of a TOML table and where they are written (array elements are keys `0`, `1`, …).
#[derive(Debug, Default)]
struct Table(Vec<Key>);

#[derive(Debug)]
struct Key {
    name: String,
    key: Range<usize>,
    value: Range<usize>,
    /// The keys under it when its value is a table or an array.
    inner: Table,
}

impl Table {
    /// The dotted name and the key whose text holds `offset`, innermost first.
    fn at(&self, offset: usize, prefix: String) -> Option<(String, &Key)> {
        self.0.iter().find_map(|k| {
            let name = if prefix.is_empty() { k.name.clone() } else { format!("{prefix}.{}", k.name) };
            let inner = k.inner.at(offset, name.clone());
            let here = k.key.contains(&offset) || k.value.contains(&offset);
            inner.or_else(|| here.then_some((name, k)))
        })
    }

    /// The key named `a.b.c`.
    fn find(&self, name: &str) -> Option<&Key> {
        let (head, rest) = name.split_once('.').map_or((name, None), |(h, r)| (h, Some(r)));
        let key = self.0.iter().find(|k| k.name == head)?;
        match rest {
            None => Some(key),
            Some(rest) => key.inner.find(rest),
        }
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Table, D::Error> {
        d.deserialize_any(Keys)
    }
}

/// Reads any TOML value, keeping the place of every key in it.
struct Keys;

impl<'de> Visitor<'de> for Keys {
    type Value = Table;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Table, A::Error> {
        let mut keys = Vec::new();
        while let Some(name) = map.next_key::<Spanned<String>>()? {
            let value: Spanned<Table> = map.next_value()?;
            let key = name.span();
            keys.push(Key { name: name.into_inner(), key, value: value.span(), inner: value.into_inner() });
        }
        Ok(Table(keys))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Table, A::Error> {
        let mut keys = Vec::new();
        while let Some(value) = seq.next_element::<Spanned<Table>>()? {
            let span = value.span();
            keys.push(Key { name: keys.len().to_string(), key: span.clone(), value: span, inner: value.into_inner() });
        }
        Ok(Table(keys))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Table, E> {
        Ok(Table::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Table, E> {
        Ok(Table::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Table, E> {
        Ok(Table::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Table, E> {
        Ok(Table::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<Table, E> {
        Ok(Table::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mistakes(text: &str) -> (bool, Vec<String>) {
        let file = ConfigFile::new("c.toml".into(), text.into());
        let (cfg, mut errors) = file.parse();
        if let Some(cfg) = &cfg {
            errors.extend(file.check(cfg));
        }
        (cfg.is_some(), ConfigErrors(errors).sorted().iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn every_key_serde_refuses_is_named_and_the_rest_still_checked() {
        let text =
            "[engine]\nbatch = \"many\"\nslice = \"0s\"\nshardz = 2\n[source]\nkind = \"kafka\"\nfiles = [\"a\", 3]\n";
        let (parsed, errors) = mistakes(text);
        assert!(parsed, "every mistake was a key that could be set aside: {errors:?}");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("c.toml:2:9: engine.batch: invalid type: string"), "{errors:?}");
        assert_eq!(errors[1], "c.toml:3:9: engine.slice: must be more than zero");
        assert!(errors[2].starts_with("c.toml:4:1: engine.shardz: unknown field `shardz`"), "{errors:?}");
        assert!(errors[3].starts_with("c.toml:6:8: source.kind: unknown variant `kafka`"), "{errors:?}");
        assert!(errors[4].starts_with("c.toml:7:15: source.files.1: invalid type: integer"), "{errors:?}");
    }

    #[test]
    fn a_check_on_a_key_the_file_does_not_write_names_the_file() {
        let (_, errors) = mistakes("[source]\nkind = \"stdin\"\n[engine]\nleap_quorum = 0\n");
        assert_eq!(errors, ["c.toml:4:15: engine.leap_quorum: must be at least 1"]);
        let (_, errors) = mistakes("[scale]\ninstances = 2\ninstance = 1\npartitions = 1\n");
        assert_eq!(
            errors,
            ["c.toml: instance 1 of 2 owns no partition: scale.partitions = 1 is fewer than the instances"]
        );
    }

    #[test]
    fn a_policy_mistake_takes_its_place_in_the_order_of_the_file() {
        let (_, errors) = mistakes("[policy]\ncaps = [\"lots per day\"]\n[engine]\nslice = \"0s\"\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("c.toml:2:9: policy.caps: `lots per day` is not a cap"), "{errors:?}");
        assert_eq!(errors[1], "c.toml:4:9: engine.slice: must be more than zero");
    }

    #[test]
    fn text_that_is_not_toml_is_one_error_as_the_parser_says_it() {
        let (parsed, errors) = mistakes("[engine\nbatch = 1\n");
        assert!(!parsed);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("c.toml: TOML parse error at line 1"), "{errors:?}");
    }

    #[test]
    fn a_good_config_has_no_mistakes() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tidings.toml"));
        let (parsed, errors) = mistakes(&text.unwrap_or_default());
        assert!(parsed && errors.is_empty(), "{errors:?}");
    }
}
