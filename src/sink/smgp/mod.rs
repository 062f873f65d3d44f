//! SMGP 3.0 (Short Message Gateway Protocol), the protocol an SP speaks to China Telecom's SMS
//! gateway: the wire format in [`pdu`].

pub mod pdu;
