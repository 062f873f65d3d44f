//! `armed.PATH`: in a timer's `cancel_if` and `recheck`, the value PATH had when the timer was
//! armed — the posting's amount a top-up must match, the balance when the clock started. PATH
//! is a field read in the rule's own scope (its `on` kinds) when the timer is armed, and kept
//! with it by name ([`crate::state::kept`]); elsewhere `armed.` is refused. Fields only, not
//! macros: a field reads no window, so what reads each window stays the conditions'.

use super::{Checked, Checker, Loc, R, Scope};
use crate::event::KindSet;
use crate::rules::diag::Code;
use crate::rules::expr::Ir;
use crate::rules::expr::schema::Ty;
use crate::rules::expr::syntax::Span;
use std::sync::Arc;

/// The most values one timer keeps.
pub const MAX_ARMED: usize = 4;

/// While a timer's `cancel_if` or `recheck` is checked: the rule's kinds (where `armed.` paths
/// are read) and the paths read so far, each with how to read it.
#[derive(Debug)]
pub struct Armed {
    pub on: KindSet,
    pub paths: Vec<(Arc<str>, Ir)>,
}

impl Checker<'_> {
    /// `armed.` and the path after it (`segs` without `armed`).
    pub(super) fn armed_path(&mut self, segs: &[(String, Span)], span: Span, loc: &Loc) -> R {
        let path: Vec<&str> = segs.iter().map(|s| s.0.as_str()).collect();
        let path = path.join(".");
        if let Scope::Filter(kind) = self.scope {
            return self.err(
                loc,
                Code::E021,
                span,
                format!(
                    "`armed.{path}` cannot be read here: a `where` filter sees only the fields of its own {kind} event"
                ),
                None,
            );
        }
        let Some(mut armed) = self.armed.take() else {
            return self.err(
                loc,
                Code::E011,
                span,
                format!("`armed.{path}` is a value a timer kept when it was armed: only a timer's `cancel_if` and `recheck` read it"),
                Some(format!("read `{path}` itself here")),
            );
        };
        // Read in the rule's own scope, without `armed.` (a kept value keeps no kept values).
        let scope = std::mem::replace(&mut self.scope, Scope::Rule(armed.on));
        let read = self.path(segs, span, loc);
        self.scope = scope;
        let found = armed.paths.iter().position(|(p, _)| **p == *path);
        let r = match read {
            None => None,
            Some(Checked::Bare(..)) => self.err(
                loc,
                Code::E011,
                span,
                format!("unknown field `armed.{path}`: `armed.` keeps a field of the rule's events"),
                Some("e.g. `armed.event.amount_fen`, `armed.event.attrs.amount_fen`, `armed.state.balance`".into()),
            ),
            Some(Checked::Val(_, ty @ (Ty::List | Ty::Tags))) => self.err(
                loc,
                Code::E013,
                span,
                format!("`armed.{path}` would keep {}: a timer keeps single values", ty.name()),
                None,
            ),
            Some(Checked::Val(ir, _)) if !matches!(ir, Ir::Field(_) | Ir::Attr(_)) => self.err(
                loc,
                Code::E013,
                span,
                format!("`armed.{path}` is not a field: a timer keeps the value of a field of the rule's events"),
                Some("name the field itself (a macro's fields one by one)".into()),
            ),
            Some(Checked::Val(..)) if found.is_none() && armed.paths.len() >= MAX_ARMED => self.err(
                loc,
                Code::E008,
                span,
                format!("a timer keeps at most {MAX_ARMED} values; this would be its {}th", MAX_ARMED + 1),
                None,
            ),
            Some(Checked::Val(ir, ty)) => {
                let name: Arc<str> = match found {
                    Some(i) => Arc::clone(&armed.paths[i].0),
                    None => {
                        let name: Arc<str> = path.into();
                        armed.paths.push((Arc::clone(&name), ir));
                        name
                    }
                };
                Some(Checked::Val(Ir::Armed(name), ty))
            }
        };
        self.armed = Some(armed);
        r
    }
}
