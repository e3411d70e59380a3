//! `fanfare plan`, the real binary: figures from a real `fanfare bench
//! --json` report, JSON output, and bad input refused with a clear error.

use std::time::Duration;

use fanfare_bench::{BenchOptions, Scenario};
use tokio::process::Command;

use crate::support::{API_KEY, TestServer};

async fn fanfare_plan(args: &[&str]) -> std::process::Output {
    let run = Command::new(env!("CARGO_BIN_EXE_fanfare")).arg("plan").args(args).output();
    tokio::time::timeout(Duration::from_secs(30), run).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bench_report_replaces_the_built_in_figure_it_measured() {
    let server = TestServer::start().await;
    let mut options = BenchOptions::new(Scenario::Idle, format!("http://{}", server.addr));
    options.api_key = Some(API_KEY.to_string());
    options.connections = 200;
    options.duration = Duration::from_millis(300);
    options.timeout = Some(Duration::from_secs(60));
    options.server_pid = Some(std::process::id());
    options.progress = false;
    let report = fanfare_bench::run(&options).await.unwrap();
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idle.json");
    std::fs::write(&file, report.to_json()).unwrap();

    let file_arg = file.to_str().unwrap();
    let output = fanfare_plan(&[
        "--peak-connections",
        "100000",
        "--publications-per-second",
        "5",
        "--bench",
        file_arg,
        "--json",
    ])
    .await;
    let measured = report.server.as_ref().unwrap().rss_per_connection_kib.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if measured > 0.0 {
        assert!(output.status.success(), "{stderr}");
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let figure = &plan["figures"]["rss_per_connection_kib"];
        assert_eq!(figure["value"].as_f64(), Some(measured), "{plan}");
        assert!(figure["source"].as_str().unwrap().starts_with(file_arg), "{figure}");
        // The figures it did not measure stay the documented ones.
        let paced = &plan["figures"]["paced_deliveries_per_cpu_second"];
        assert_eq!(paced["value"].as_f64(), Some(156_740.0), "{plan}");
        assert!(plan["region"]["nodes"].as_u64().unwrap() >= 3, "{plan}");
    } else {
        // The allocator gave nothing back per connection this time: the
        // plan must say so rather than divide by it.
        assert!(!output.status.success());
        assert!(stderr.contains(file_arg) && stderr.contains("memory per connection"), "{stderr}");
    }
}

#[tokio::test]
async fn the_text_plan_answers_first_and_lists_its_assumptions() {
    let output = fanfare_plan(&[
        "--daily-users",
        "10000000",
        "--messages-per-user-per-day",
        "50",
        "--shape",
        "direct",
        "--regions",
        "2",
    ])
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("Nodes: 86 (2 regions x 43), 4 cores each, limited by connections\n"), "{text}");
    assert!(text.contains("Redis per region") && text.contains("Assumed:"), "{text}");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_flag_and_the_reason() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--peak-connections", "-5", "--publications-per-second", "1"],
            "--peak-connections: must be more than 0, not -5",
        ),
        (
            &["--peak-connections", "0", "--publications-per-second", "1"],
            "--peak-connections: must be more than 0, not 0",
        ),
        (
            &["--peak-connections", "1e13", "--publications-per-second", "1"],
            "--peak-connections: must be from 1 to",
        ),
        (&["--daily-users", "100"], "--messages-per-user-per-day: is required"),
        (
            &[
                "--peak-connections",
                "10",
                "--publications-per-second",
                "1",
                "--bench",
                "/nonexistent/report.json",
            ],
            "reading /nonexistent/report.json",
        ),
    ];
    for (args, expected) in cases {
        let output = fanfare_plan(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let output = fanfare_plan(&["--peak-connections", "ten", "--publications-per-second", "1"]).await;
    assert_eq!(output.status.code(), Some(2), "clap refuses what is not a number");
}

#[tokio::test]
async fn a_file_that_is_not_a_bench_report_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.json");
    std::fs::write(&file, r#"{"hello": "world"}"#).unwrap();
    let output = fanfare_plan(&[
        "--peak-connections",
        "10",
        "--publications-per-second",
        "1",
        "--bench",
        file.to_str().unwrap(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not the JSON of `fanfare bench --json`"), "{stderr}");
}

/// Every `$ fanfare plan …` in docs/capacity.md's console blocks, with
/// what the page shows it printing: the first lines of the real output.
#[tokio::test]
async fn the_capacity_guide_shows_what_the_planner_prints() {
    let guide = include_str!("../../../../docs/capacity.md");
    let mut checked = 0;
    for block in guide.split("```console\n").skip(1) {
        let block = block.split("```").next().unwrap();
        for (command, expected) in console_commands(block) {
            let args: Vec<&str> = command.split_whitespace().skip(2).collect();
            let output = fanfare_plan(&args).await;
            let printed = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(printed.starts_with(&expected), "`{command}` prints\n{printed}\nnot\n{expected}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "the guide's examples: three plans and three refusals");
}

/// `(command, output)` pairs: a command starts with `$ `, goes on while its
/// lines end in `\`, and its output runs to the next command.
fn console_commands(block: &str) -> Vec<(String, String)> {
    let mut commands: Vec<(String, String)> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            commands.push((command.trim_end_matches('\\').to_string(), String::new()));
            continued = line.ends_with('\\');
        } else if let Some((command, output)) = commands.last_mut() {
            if continued {
                command.push(' ');
                command.push_str(line.trim().trim_end_matches('\\'));
                continued = line.ends_with('\\');
            } else {
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    commands
}
