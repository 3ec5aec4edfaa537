//! The bounds on what a scenario file may ask of the simulator: the size of the scenario file
//! and of its CSV profiles, the length of every span, the number of trace rows, and loading a
//! file of many entries without rescanning it. Each refusal names the file, the field and the
//! allowed range.

use std::path::{Path, PathBuf};

use cellwarden_sim::engine;
use cellwarden_sim::scenario::{
    LoadError, MAX_PROFILE_POINTS, MAX_TRACE_ROWS, Span, load, load_str,
};
use cellwarden_sim::text_file::{PROFILE_MAX_BYTES, SCENARIO_MAX_BYTES};

const FILE: &str = "scenarios/bounds.toml";

/// A small valid scenario; `{duration}` and `{extra}` are filled in by [`scenario`].
const BASE: &str = r#"name = "Bounds"
seed = 1
duration = "{duration}"

[system]
preset = "tesla_model_s"
modules = 16

[[timeline]]
at = "1s"
command = "start"
{extra}
[[expect]]
kind = "at_end"
state = "closed"
"#;

fn scenario(duration: &str, extra: &str) -> String {
    BASE.replace("{duration}", duration).replace("{extra}", extra)
}

fn refused(text: &str) -> LoadError {
    match load_str(Path::new(FILE), text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

fn line_with(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle") + 1
}

/// A scratch directory of its own for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cellwarden-bounds-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

// -------------------------------------------------------------------------------------------
// File sizes

#[test]
fn an_endless_scenario_file_is_refused_at_the_cap() {
    // Read whole, /dev/zero would grow the process until it is killed.
    let e = load(Path::new("/dev/zero")).expect_err("/dev/zero is not a scenario");
    assert_eq!(
        e.message,
        "/dev/zero: larger than 8 MiB, the most a scenario file may hold; reading stopped there"
    );
    assert_eq!(e.line, None);
}

#[test]
fn a_scenario_file_may_be_as_large_as_the_cap_and_no_larger() {
    let dir = scratch_dir("size");
    let path = dir.join("padded.toml");
    let text = scenario("1m", "");
    // Padded with a comment to exactly the cap: still a scenario.
    let mut padded = text.clone().into_bytes();
    padded.extend(b"#");
    padded.resize(SCENARIO_MAX_BYTES as usize - 1, b'x');
    padded.push(b'\n');
    std::fs::write(&path, &padded).expect("write");
    load(&path).unwrap_or_else(|e| panic!("a file of exactly the cap loads: {e}"));

    padded.insert(text.len() + 1, b'x');
    std::fs::write(&path, &padded).expect("write");
    let e = load(&path).expect_err("one byte over the cap");
    assert_eq!(
        e.message,
        format!(
            "{}: larger than 8 MiB, the most a scenario file may hold; reading stopped there",
            path.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_endless_csv_profile_is_refused_at_the_cap() {
    assert_eq!(PROFILE_MAX_BYTES, 16 * 1024 * 1024);
    let text = scenario(
        "1m",
        "\n[[timeline]]\nat = \"2s\"\nload = { kind = \"csv\", path = \"/dev/zero\", unit = \"watts\" }\n",
    );
    let e = refused(&text);
    assert_eq!(e.field, "timeline[1].load");
    assert_eq!(e.line, Some(line_with(&text, "/dev/zero")));
    assert!(
        e.message.ends_with(
            "/dev/zero: larger than 16 MiB, the most a CSV profile may hold; reading stopped there"
        ),
        "{}",
        e.message
    );
}

#[test]
fn csv_profiles_read_again_and_again_are_bounded_together() {
    // One file under its size cap, named by two timeline entries: each reads it again and
    // keeps its own points, so the points of all profiles count together.
    let dir = scratch_dir("points");
    let rows = MAX_PROFILE_POINTS / 2 + 1;
    let mut csv = String::from("time_s,value\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},0\n"));
    }
    assert!(csv.len() as u64 <= PROFILE_MAX_BYTES);
    std::fs::write(dir.join("long.csv"), &csv).expect("write");
    let entry = |at: &str| {
        format!(
            "\n[[timeline]]\nat = \"{at}\"\nload = {{ kind = \"csv\", path = \"long.csv\", unit = \"amps\" }}\n"
        )
    };
    let once = scenario("1m", &entry("2s"));
    let path = dir.join("s.toml");
    load_str(&path, &once).expect("one long profile loads");

    let twice = scenario("1m", &format!("{}{}", entry("2s"), entry("3s")));
    let e = load_str(&path, &twice).expect_err("two are too many points");
    assert_eq!(e.field, "timeline[2].load");
    assert_eq!(e.line, Some(line_with(&twice, "at = \"3s\"") + 1));
    assert!(
        e.message.ends_with(&format!(
            "timeline[2].load: the load profiles up to here hold {} points, more than the \
             2000000 one scenario may keep",
            2 * rows
        )),
        "{}",
        e.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------------------------------------
// Spans

#[test]
fn a_duration_longer_than_a_year_is_refused_with_the_range() {
    let text = scenario("213503982d", "");
    let e = refused(&text);
    assert_eq!(
        e.message,
        format!(
            "{FILE}:3:12: duration: `213503982d` is longer than 366d, the longest span allowed \
             (0s to 366d)"
        )
    );
    assert_eq!(e.field, "duration");

    // A year is allowed, with a trace coarse enough for it.
    let year = scenario("366d", "\n[output]\ntrace_interval = \"1h\"\n");
    let s = load_str(Path::new(FILE), &year).expect("a year loads");
    assert_eq!(s.duration, Span::MAX.0);
}

#[test]
fn every_span_is_bounded_not_only_the_duration() {
    let text = scenario("1m", "\n[[timeline]]\nat = \"400d\"\nnote = \"late\"\n");
    let e = refused(&text);
    assert_eq!(e.field, "timeline[1].at");
    assert_eq!(e.line, Some(line_with(&text, "400d")));
    assert!(
        e.message.ends_with("`400d` is longer than 366d, the longest span allowed (0s to 366d)")
    );

    // Digits beyond any integer are too long as well, not a puzzle.
    let text = scenario("99999999999999999999999h", "");
    let e = refused(&text);
    assert!(e.message.contains("is longer than 366d"), "{}", e.message);
}

// -------------------------------------------------------------------------------------------
// Trace rows

#[test]
fn a_trace_interval_finer_than_a_millisecond_is_refused_with_the_range() {
    let text = scenario("1m", "\n[output]\ntrace_interval = \"1us\"\n");
    let e = refused(&text);
    assert_eq!(
        e.message,
        format!(
            "{FILE}:{}:18: output.trace_interval: 1us is outside the allowed 1ms to 366d for a \
             run of 1m (a trace keeps at most 100000 rows, none closer than 1ms)",
            line_with(&text, "1us")
        )
    );
    let text = scenario("1m", "\n[output]\ntrace_interval = \"1ms\"\n");
    load_str(Path::new(FILE), &text).expect("1ms over a minute is 60000 rows");
}

#[test]
fn a_trace_of_too_many_rows_is_refused_with_the_shortest_interval_that_fits() {
    assert_eq!(MAX_TRACE_ROWS, 100_000);
    // Two days at one row a second: 172,800 rows.
    let text = scenario("2d", "\n[output]\ntrace_interval = \"1s\"\n");
    let e = refused(&text);
    assert_eq!(e.field, "output.trace_interval");
    assert!(
        e.message.ends_with(
            "output.trace_interval: 1s is outside the allowed 1s728ms to 366d for a run of 2d \
             (a trace keeps at most 100000 rows, none closer than 1ms)"
        ),
        "{}",
        e.message
    );
    // The shortest interval the message names is allowed.
    let text = scenario("2d", "\n[output]\ntrace_interval = \"1s728ms\"\n");
    let s = load_str(Path::new(FILE), &text).expect("the interval named loads");
    let rows = s.duration.as_micros() / s.trace_interval.as_micros();
    assert!(rows <= MAX_TRACE_ROWS, "{rows}");
    let text = scenario("2d", "\n[output]\ntrace_interval = \"1s727ms\"\n");
    refused(&text);
}

#[test]
fn a_file_without_a_trace_interval_gets_one_that_fits_the_run() {
    // Short runs keep the default of one row a second.
    let s = load_str(Path::new(FILE), &scenario("1h", "")).expect("an hour loads");
    assert_eq!(s.trace_interval.as_micros(), 1_000_000);
    // Two days would be 172,800 rows at one a second: the default widens to whole seconds.
    let s = load_str(Path::new(FILE), &scenario("2d", "")).expect("two days load");
    assert_eq!(s.trace_interval.as_micros(), 2_000_000);
    // A year, the longest run, still loads without a setting.
    let s = load_str(Path::new(FILE), &scenario("366d", "")).expect("a year loads");
    assert!(s.duration.as_micros() / s.trace_interval.as_micros() <= MAX_TRACE_ROWS);
}

#[test]
fn rows_at_events_are_bounded_at_run_time() {
    // The periodic rows are bounded when the file loads; rows at events come as often as the
    // timeline and the core make them. Here a note every 2 ms asks for more than the cap.
    let extra_rows = 50;
    let notes = MAX_TRACE_ROWS as usize + extra_rows;
    let mut extra = String::from("\n[output]\ntrace_interval = \"10m\"\nevent_log = false\n");
    for i in 0..notes {
        extra.push_str(&format!("\n[[timeline]]\nat = \"{}ms\"\nnote = \"n\"\n", 2 * i + 2));
    }
    let text = scenario("10m", &extra);
    let s = load_str(Path::new(FILE), &text).expect("loads");
    let report = engine::run(&s, &mut |_, _| {});
    let summary = &report.summary;
    assert_eq!(summary.trace_event_rows, MAX_TRACE_ROWS);
    assert!(summary.trace_rows_left_out >= extra_rows as u64, "{}", summary.trace_rows_left_out);
    // The event rows kept, the periodic ones at 0 and 10m, and one at the end at most.
    assert!(report.trace.len() as u64 <= MAX_TRACE_ROWS + 3, "{}", report.trace.len());
    let line = format!(
        "\n  Trace                  {} rows at events left out; {MAX_TRACE_ROWS} kept besides the \
         periodic ones\n",
        summary.trace_rows_left_out
    );
    assert!(report.render().contains(&line), "{}", report.render());
}

// -------------------------------------------------------------------------------------------
// Many entries

#[test]
fn fifty_thousand_expectations_load_with_their_lines() {
    // Finding each entry's line by counting from the start of the file made this quadratic:
    // 8,000 expectations took seconds, 50,000 more than a minute. The line index makes it one
    // pass; the unit tests of `lines.rs` count the bytes each lookup reads.
    const N: usize = 50_000;
    let mut text = scenario("1m", "");
    for i in 0..N {
        text.push_str(&format!(
            "\n[[expect]]\nkind = \"count\"\nevent = \"command\"\nmin = 0\nmax = {i}\n"
        ));
    }
    assert!(text.len() as u64 <= SCENARIO_MAX_BYTES);
    let s = load_str(Path::new(FILE), &text).expect("many expectations load");
    assert_eq!(s.expectations.len(), N + 1);
    // Each expectation's line is the line of its `[[expect]]`, in file order.
    let headers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| *line == "[[expect]]")
        .map(|(i, _)| i + 1)
        .collect();
    let lines: Vec<usize> = s.expectations.iter().map(|e| e.line).collect();
    assert_eq!(lines, headers);
}
