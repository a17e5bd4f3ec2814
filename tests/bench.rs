//! The benchmark tool runs end to end, so the figures in the README cannot rot.
//!
//! Only a smoke run: it checks that every setup succeeds and that figures are reported, not
//! how fast they are (timing targets belong to the benchmark, not to a test).

use std::process::Command;

use peerchat_e2e::{PeerchatServer, workspace_bin};
use serde_json::Value;

#[test]
fn benchmark_smoke_run_reports_setup_and_round_trip() {
    let server = PeerchatServer::start();
    let output = Command::new(workspace_bin("peerchat-bench"))
        .args(["--server", &server.broker.tcp_url])
        .args(["--setups", "5", "--messages", "50"])
        .output()
        .expect("peerchat-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = stdout
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("a JSON summary line");
    assert_eq!(summary["setups"], 5);
    assert_eq!(summary["setup_failures"], 0);
    assert_eq!(summary["messages"], 50);
    for figure in [
        "setup_median_ms",
        "setup_p99_ms",
        "rtt_median_ms",
        "rtt_p99_ms",
    ] {
        let value = summary[figure].as_f64().expect(figure);
        assert!(value > 0.0, "{figure} = {value}");
    }
}
