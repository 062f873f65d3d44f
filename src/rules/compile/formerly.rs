//! Former names (`was:`) checked across the pack: a former name must be free (no item of the
//! same kind is called so now: that item keeps its own state) and name one item only.

use crate::rules::derive::DeriveDef;
use crate::rules::diag::{Code, Diagnostic};
use crate::rules::journey::{JourneyDef, StepDef};
use crate::rules::set::{Former, Rule};
use std::collections::HashMap;

/// One kind of item's names and former names: each item's name, file and former names.
struct Kind<'a> {
    what: &'static str,
    items: Vec<(String, &'a str, &'a [Former])>,
}

/// E017 for each former name that is an item's name now or another item's former name.
pub(crate) fn check(
    files: &[(String, String)],
    (rules, journeys, steps, derives): (&[Rule], &[JourneyDef], &[StepDef], &[DeriveDef]),
    diags: &mut Vec<Diagnostic>,
) {
    let step_name = |s: &StepDef| match journeys.get(s.journey as usize) {
        Some(j) => format!("{}.{}", j.name, s.name),
        None => s.name.to_string(),
    };
    // A step's own former names only (`journey.step` with the journey's name now): those made
    // from the journey's former names are checked as the journey's.
    let own = |s: &StepDef| -> Vec<Former> {
        let prefix = journeys.get(s.journey as usize).map(|j| format!("{}.", j.name)).unwrap_or_default();
        s.was.iter().filter(|f| f.name.starts_with(&prefix)).cloned().collect()
    };
    let step_was: Vec<(String, &str, Vec<Former>)> = steps
        .iter()
        .map(|s| {
            let file = journeys.get(s.journey as usize).map_or("", |j| &j.file);
            (step_name(s), file, own(s))
        })
        .collect();
    let kinds = [
        Kind {
            what: "rule",
            // A journey step's rule answers to the step's names: checked as the step.
            items: rules
                .iter()
                .filter(|r| !r.name.contains('.'))
                .map(|r| (r.name.to_string(), &*r.file, &*r.was))
                .collect(),
        },
        Kind { what: "journey", items: journeys.iter().map(|j| (j.name.to_string(), &*j.file, &*j.was)).collect() },
        Kind { what: "step", items: step_was.iter().map(|(n, f, w)| (n.clone(), *f, w.as_slice())).collect() },
        Kind { what: "derive", items: derives.iter().map(|d| (d.name.to_string(), &*d.file, &*d.was)).collect() },
    ];
    for kind in kinds {
        let names: HashMap<&str, &str> = kind.items.iter().map(|(n, f, _)| (n.as_str(), *f)).collect();
        let mut claimed: HashMap<&str, &str> = HashMap::new();
        for (name, file, was) in &kind.items {
            let src = files.iter().find(|(f, _)| f == file).map_or("", |(_, s)| s.as_str());
            for f in *was {
                let what = kind.what;
                let msg = if names.contains_key(&*f.name) {
                    format!("`was: {}`: a {what} of this pack is called `{}`; a former name names none", f.name, f.name)
                } else if let Some(other) = claimed.insert(&f.name, name) {
                    format!("`{}` is already a former name of {what} `{other}`", f.name)
                } else {
                    continue;
                };
                diags.push(Diagnostic::new(Code::E017, file, src, f.at, msg));
            }
        }
    }
}
