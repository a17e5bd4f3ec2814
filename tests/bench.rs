//! The benchmark tool runs end to end, so the figures in docs/benchmarks.md cannot rot.
//!
//! Only smoke runs: they check that every setup succeeds and that figures are reported and
//! consistent, not how fast or small they are (targets belong to the benchmark, not to a test).

use std::process::Command;

use peerchat_e2e::{PeerchatServer, workspace_bin};
use serde_json::Value;

/// Runs `peerchat-bench` with `args` and returns its JSON summary line.
fn bench_summary(args: &[&str]) -> Value {
    let output = Command::new(workspace_bin("peerchat-bench"))
        .args(args)
        .output()
        .expect("peerchat-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .expect("a JSON summary line")
}

fn positive(summary: &Value, figure: &str) -> f64 {
    let value = summary[figure].as_f64().expect(figure);
    assert!(value > 0.0, "{figure} = {value}");
    value
}

#[test]
fn benchmark_smoke_run_reports_setup_round_trip_and_throughput() {
    let server = PeerchatServer::start();
    let summary = bench_summary(&[
        "--server",
        &server.broker.tcp_url,
        "--setups",
        "5",
        "--messages",
        "50",
        "--transfer-mib",
        "1,5",
    ]);
    assert_eq!(summary["setups"], 5);
    assert_eq!(summary["setup_failures"], 0);
    assert_eq!(summary["messages"], 50);
    for figure in [
        "setup_median_ms",
        "setup_p99_ms",
        "rtt_median_ms",
        "rtt_p99_ms",
    ] {
        positive(&summary, figure);
    }
    // A file over the send buffer's high mark: sent in several drains, checked whole.
    let transfers = summary["transfers"].as_array().expect("transfer figures");
    assert_eq!(transfers.len(), 2);
    assert_eq!(transfers[1]["bytes"], 5 * 1024 * 1024);
    for transfer in transfers {
        positive(transfer, "mb_per_s");
    }
}

#[test]
fn broker_benchmark_smoke_run_reports_throughput_and_idle_memory() {
    let summary = bench_summary(&[
        "broker",
        "--pairs",
        "2",
        "--warmup-seconds",
        "0.2",
        "--seconds",
        "1",
        "--idle",
        "50",
    ]);
    assert_eq!(summary["broker"], "peerchat-server");
    assert_eq!(summary["pairs"], 2);
    assert_eq!(summary["idle_connections"], 50);
    positive(&summary, "delivered");
    positive(&summary, "messages_per_second");
    positive(&summary, "rss_after_load_bytes");
    let before = positive(&summary, "rss_before_idle_bytes");
    let with_idle = positive(&summary, "rss_with_idle_bytes");
    let per_connection = summary["bytes_per_idle_connection"]
        .as_f64()
        .expect("bytes_per_idle_connection");
    assert!(
        (per_connection - (with_idle - before) / 50.0).abs() < 1.0,
        "{summary}"
    );
}

#[test]
fn memory_benchmark_smoke_run_reports_hub_memory_per_chat() {
    let summary = bench_summary(&["memory", "--peers", "1,2", "--batch", "2"]);
    assert_eq!(summary["peers"], serde_json::json!([1, 2]));
    positive(&summary, "rss_no_peers_bytes");
    let rss: Vec<f64> = summary["rss_bytes"]
        .as_array()
        .expect("rss_bytes")
        .iter()
        .map(|bytes| bytes.as_f64().expect("bytes are numbers"))
        .collect();
    assert_eq!(rss.len(), 2);
    assert!(rss.iter().all(|&bytes| bytes > 0.0), "{summary}");
    let per_peer = summary["bytes_per_extra_peer"]
        .as_f64()
        .expect("bytes_per_extra_peer");
    assert!((per_peer - (rss[1] - rss[0])).abs() < 1.0, "{summary}");
}

#[test]
fn room_benchmark_smoke_run_reports_forming_and_reach() {
    let summary = bench_summary(&["room", "--members", "4", "--messages", "8"]);
    println!("{summary}");
    assert_eq!(summary["members"], 4);
    assert_eq!(summary["messages"], 8);
    positive(&summary, "formed_ms");
    let median = positive(&summary, "reach_all_median_ms");
    assert!(
        positive(&summary, "reach_all_p99_ms") >= median,
        "{summary}"
    );
}

/// docs/scale.md's capacity figures say "none refused": a small storm and crowd on one
/// server, every user online.
#[test]
fn capacity_benchmark_smoke_run_gets_every_user_online() {
    let summary = bench_summary(&[
        "capacity",
        "--storm",
        "300",
        "--users",
        "400",
        "--sources",
        "2",
    ]);
    println!("{summary}");
    assert_eq!(summary["broker"], "peerchat-server");
    assert_eq!(summary["storm_asked"], 300);
    assert_eq!(
        summary["storm_online"], 300,
        "a user of the storm was refused"
    );
    positive(&summary, "storm_seconds");
    assert_eq!(summary["users_asked"], 400);
    assert_eq!(summary["users_held"], 400, "an idle user was refused");
}
