//! The chaos scenario of `chitty-bench`, short: six participants in network namespaces talk
//! for a minute while a seeded schedule joins, quits, kills and restarts, freezes and
//! partitions them. Every live transcript must end the same and complete, nobody may crash,
//! and nothing of the lab may be left behind. No time is asserted. (docs/RELIABILITY.md has a
//! long run's figures.)

use std::process::Command;

use serde_json::Value;

fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn a_minute_of_chaos_ends_in_one_complete_transcript() {
    if let Some(why) = chitty_lab::Lab::unavailable() {
        eprintln!("skipped: network namespaces unavailable: {why}");
        return;
    }
    let before = namespaces();
    let out = Command::new(env!("CARGO_BIN_EXE_chitty-bench"))
        .args([
            "--scenario",
            "chaos",
            "--nodes",
            "6",
            "--duration",
            "60s",
            "--seed",
            "20261471",
            "--json",
        ])
        .output()
        .expect("chitty-bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON report ({e}); stderr:\n{stderr}"));
    println!("{report:#}");
    assert_eq!(report["identical"], true, "{report:#}");
    assert_eq!(report["missing"], 0, "{report:#}");
    assert_eq!(report["crashed"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["transcript_duplicates"], 0, "{report:#}");
    // It did disrupt: something of every kind but the rarer ones, and lines were delivered.
    for kind in ["kill", "freeze", "partition"] {
        assert!(
            report["actions"][kind].as_u64() > Some(0),
            "{kind}: {report:#}"
        );
    }
    assert!(report["required"].as_u64() > Some(100), "{report:#}");
    assert!(
        report["deliveries"].as_u64() > report["required"].as_u64(),
        "{report:#}"
    );
    assert!(out.status.success(), "{stderr}");
    let left: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}
