//! SGIP 1.2 (SMS Gateway Interface Protocol), the protocol between an SP and China Unicom's SMG:
//! the wire format in [`pdu`].

pub mod pdu;
