//! A former name of an item (`was:`): what the rules, journeys, steps and derives that were
//! renamed also answer to when state carries over (see [`crate::state::checkpoint::Formerly`]).

/// A former name of an item, where it is written: state kept under it carries over to the item
/// at a reload or a restore.
#[derive(Clone, Debug)]
pub struct Former {
    pub name: Box<str>,
    pub at: super::yaml::Pos,
}
