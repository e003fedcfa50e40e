//! A small, fast run of `chitty-bench`: the tool works end to end (it asserts no times).

use serde_json::Value;

#[test]
fn the_bench_runs_and_every_message_arrives_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chitty-bench"))
        .args([
            "--nodes",
            "3",
            "--messages",
            "20",
            "--rate",
            "50",
            "--size",
            "256",
            "--json",
        ])
        .output()
        .expect("chitty-bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["nodes"], 3);
    assert_eq!(report["delivered"], 1.0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["latency"]["count"], 40, "{report}");
    assert!(
        report["rss_rest_kib"]
            .as_array()
            .is_some_and(|v| v.len() == 3)
    );
    assert!(report["floor"]["count"].as_u64() > Some(0));
}
