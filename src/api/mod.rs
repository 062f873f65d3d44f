//! tidings' own HTTP endpoint, its routes: gateways report back (Kannel delivery reports and MO,
//! call-centre results), the 10086 IVR asks for a personalised answer ([`ivr`]), operations staff
//! reload rules, explain a subscriber and read health and metrics ([`admin`]). The server
//! underneath is [`crate::http`].

pub mod admin;
pub mod ivr;
