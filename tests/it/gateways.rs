//! The CMPP/SMGP/SGIP gateway simulator (`tests/gateways/sim.py`) checked against independent
//! implementations: PyPI's `pycmpp` (CMPP 2.0) and `cmppy` (CMPP 3.0) as clients, and the SMGP 3.0
//! and SGIP 1.2 byte layouts of the protocol documents (`tests/gateways/check_sim.py`, which
//! installs the two clients into `tests/gateways/.pylib` when they are missing).

use std::path::Path;
use std::process::Command;

#[test]
fn gateway_simulator_passes_the_independent_client_and_byte_layout_checks() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateways/check_sim.py");
    let out = Command::new("python3").arg(&script).output().expect("python3 is needed for the gateway tests");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tests/gateways/check_sim.py failed:\n{stderr}");
    assert!(stderr.contains("\nOK"), "the checks did not report OK:\n{stderr}");
}
