//! tidings' own HTTP endpoint, its routes: gateways report back (Kannel delivery reports and MO,
//! call-centre results), the 10086 IVR asks for a personalised answer ([`ivr`]), operations staff
//! reload rules, explain a subscriber and read health, metrics and the live funnel ([`admin`],
//! [`funnel`]), as the users and roles
//! of [`users`]; rule-pack changes go through [`deploy`] (checks, approval, versions, audit). The server
//! underneath is [`crate::http`].

pub mod admin;
pub mod audit;
pub mod checks;
pub mod console;
pub mod deploy;
pub mod funnel;
pub mod ivr;
pub mod reload;
pub mod store;
pub mod users;
