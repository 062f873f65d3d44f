//! CMPP (China Mobile Peer to Peer), the protocol an SP speaks to China Mobile's ISMG, versions
//! 2.0 and 3.0: the wire format in [`pdu`].

pub mod pdu;
