//! The real `cellwarden-sim` binary writing and reading candump logs: `can-decode` on the real
//! Pylontech stack frames of `scenarios/data/pylontech_stack.candump`, on a log with bad lines
//! and on a missing file; and `run --candump` on a parallel system, whose log must parse, cover
//! every bus in time order and leave the report as it is without the flag.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cellwarden_io::can::candump::{Replay, parse_line};

/// `cellwarden-sim ARGS`, run from the workspace root so that scenario paths resolve.
fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellwarden-sim"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("cannot start cellwarden-sim")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("can_decode").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the output is UTF-8")
}

#[test]
fn the_real_pylontech_stack_decodes_to_its_documented_values() {
    let out = sim(&["can-decode", "scenarios/data/pylontech_stack.candump"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));

    // Frame by frame: the first cycle, stamped from the log's first frame.
    for line in [
        "(0.000000) can0 359#0000000005504E00  lv: Pylontech flags: 5 modules, protection: none, \
         alarm: none",
        "(0.088000) can0 351#330209240924D501  lv: limits: CVL 56.3 V, CCL 922.5 A, DCL 922.5 A, \
         DVL 46.9 V",
        "(0.176000) can0 355#5000640000000000  lv: SoC 80 %, SoH 100 %",
        "(0.264000) can0 356#AB14DFFCCC000000  lv: battery 52.91 V, -80.1 A (discharging), 20.4 °C",
        "(0.352000) can0 35C#C000000000000000  lv: requests: charge enabled, discharge enabled",
        "(0.440000) can0 35E#50594C4F4E000000  lv: name \"PYLON\"",
        "(0.528000) can0 373#D80CF10C22012A01  lv: cell min 3288 mV, max 3313 mV, Tmin 16.9 °C, \
         Tmax 24.9 °C",
        "(0.616000) can0 305#0000000000000000  lv: inverter keep-alive",
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}` in\n{stdout}");
    }

    // The summary: what an inverter's reader assembled from the whole log.
    let summary = stdout.split_once("\n\n").map_or("", |(_, s)| s);
    for part in [
        "can0: 32 frames, 32 decoded, 0 decode errors",
        "low-voltage battery view",
        "limits     CVL 56.3 V, CCL 922.5 A, DCL 922.5 A, DVL 46.9 V",
        "state      SoC 80 %, SoH 100 %, 52.91 V, -80.1 A (discharging), 20.4 °C",
        "cells      min 3288 mV, max 3313 mV, Tmin 16.9 °C, Tmax 24.9 °C",
        "battery    5 modules, capacity unknown; charge enabled, discharge enabled",
        "alarms     none; warnings none",
        "name       \"PYLON\"",
        "1 interface, 32 frames: 32 decoded, 0 decode errors; 0 bad log lines",
    ] {
        assert!(summary.contains(part), "missing `{part}` in the summary\n{summary}");
    }
}

#[test]
fn the_wrong_protocol_gives_an_error_per_frame_not_a_failure() {
    let out = sim(&["can-decode", "scenarios/data/pylontech_stack.candump", "--protocol", "byd"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(
        "(0.088000) can0 351#330209240924D501  byd error: identifier 351 is not one of the \
         protocol's"
    ));
    assert!(stdout.contains("can0: 32 frames, 0 decoded, 32 decode errors"), "{stdout}");
    assert!(stdout.contains("BYD: no complete battery view"), "{stdout}");
}

#[test]
fn bad_lines_are_reported_with_their_numbers_and_counted() {
    let dir = scratch("bad_lines");
    let log = dir.join("bad.log");
    std::fs::write(
        &log,
        "# a comment, skipped\n\
         (5.000000) can0 351#330209240924D501\n\
         this is not a candump line\n\
         \n\
         (5.100000) can0 355#XY\n\
         (5.200000) can0 355#50\n\
         (5.300000) can0 123#R\n\
         (5.400000) vcan1 110#0920064001000100\n",
    )
    .unwrap();
    let out = sim(&["can-decode", log.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    for part in [
        "(0.000000) can0 351#330209240924D501  lv: limits: CVL 56.3 V",
        "skipped line 3: expected a timestamp",
        "skipped line 5: data `XY` is not pairs of hex digits",
        "(0.200000) can0 355#50  lv error: 355 with 1 data bytes is too short for its fields",
        "skipped line 7: remote frames",
        "(0.400000) vcan1 110#0920064001000100  byd: limits: CVL 233.6 V, CCL 25.6 A, DCL 25.6 A, \
         DVL 160.0 V",
        "can0: 2 frames, 1 decoded, 1 decode error",
        "low-voltage: no complete battery view",
        "vcan1: 1 frame, 1 decoded, 0 decode errors",
        "BYD: no complete battery view",
        "2 interfaces, 3 frames: 2 decoded, 1 decode error; 3 bad log lines",
    ] {
        assert!(stdout.contains(part), "missing `{part}` in\n{stdout}");
    }
    // Nothing else is skipped: the blank line and the comment are not reported.
    assert_eq!(stdout.matches("skipped").count(), 3, "{stdout}");
}

#[test]
fn a_missing_log_exits_2_and_says_which() {
    let out = sim(&["can-decode", "no/such/file.log"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: no/such/file.log"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn run_candump_logs_every_bus_in_time_order_and_changes_no_report() {
    let dir = scratch("run_candump");
    let scenario = "scenarios/can_pack_wrong_voltage.toml";
    let with = dir.join("with");
    let again = dir.join("again");
    let without = dir.join("without");
    for (out, flag) in [(&with, true), (&again, true), (&without, false)] {
        let mut args =
            vec!["run", scenario, "--quiet", "--no-plot", "--out", out.to_str().unwrap()];
        if flag {
            args.push("--candump");
        }
        let run = sim(&args);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    }
    let read = |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert_eq!(read(with.join("report.txt")), read(without.join("report.txt")));
    assert_eq!(read(with.join("trace.csv")), read(without.join("trace.csv")));
    assert!(!without.join("can.log").exists());

    let log = read(with.join("can.log"));
    assert_eq!(log, read(again.join("can.log")), "the log is the same run to run");
    let log = text(&log);
    let buses = ["pack0", "pack1", "pack2", "inv0"];
    let mut frames = [0usize; 4];
    for (n, line) in log.lines().enumerate() {
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", n + 1));
        let bus = buses.iter().position(|b| *b == parsed.iface);
        let bus = bus.unwrap_or_else(|| panic!("line {}: unexpected bus {}", n + 1, parsed.iface));
        frames[bus] += 1;
    }
    assert!(frames.iter().all(|&n| n > 0), "frames per bus {buses:?}: {frames:?}");
    // Virtual time from an epoch of 0: the first frame goes out within the first second.
    assert!(log.starts_with("(0."), "{}", &log[..log.len().min(80)]);

    let mut last = None;
    let mut replayed = 0;
    for item in Replay::open(with.join("can.log")).unwrap() {
        let frame = item.unwrap();
        assert!(last.is_none_or(|t| t <= frame.offset), "line {} goes back in time", frame.line);
        last = Some(frame.offset);
        replayed += 1;
    }
    assert_eq!(replayed, frames.iter().sum::<usize>());
}

#[test]
fn run_candump_without_can_buses_says_so_and_writes_no_log() {
    let dir = scratch("no_buses");
    let out = sim(&[
        "run",
        "scenarios/precharge_success.toml",
        "--candump",
        "--quiet",
        "--no-plot",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no CAN buses"), "{stderr}");
    assert!(dir.join("report.txt").exists());
    assert!(!dir.join("can.log").exists());
}
