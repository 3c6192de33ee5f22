//! The Markdown a person reads after a run (a GitHub job summary, a PR comment): one row per
//! cell with its counts, duration and phase timings; what changed since a baseline; then every
//! failure with its first diagnostic line and where its artifacts are.

use super::results::{CheckResult, Diff, Results, Status};
use std::fmt::Write as _;
use std::time::Duration;

/// GitHub refuses a step summary over 1 MiB; stay clear of it with room for the workflow's own lines.
pub const DEFAULT_MAX_BYTES: usize = 1_000_000;

/// A failure line longer than this is cut: the summary points at the report, it is not one.
const MAX_NOTE_CHARS: usize = 300;

/// Text that Markdown must show as written: the characters that start emphasis, code, links,
/// tables or HTML are escaped.
fn text(s: &str) -> String {
    let mut line: String = s.chars().take(MAX_NOTE_CHARS).collect();
    if s.chars().count() > MAX_NOTE_CHARS {
        line.push('…');
    }
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span that survives backticks inside the text.
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace(['|'], "\\|"))
}

fn duration(d: Duration) -> String {
    let d = if d >= Duration::from_secs(10) {
        Duration::from_secs(d.as_secs() + u64::from(d.subsec_millis() >= 500))
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
    flaky: usize,
}

impl Counts {
    fn add(&mut self, s: Status) {
        match s {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Skipped => self.skipped += 1,
            Status::Flaky => self.flaky += 1,
        }
    }
}

fn cells_table(results: &Results, out: &mut String) {
    let _ = writeln!(
        out,
        "| Cell | Passed | Failed | Skipped | Flaky | Duration | Phases |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    let mut total = Counts::default();
    let mut total_time = Duration::ZERO;
    for cell in &results.cells {
        let mut counts = Counts::default();
        let mut check_time = Duration::ZERO;
        let mut phase_time = Duration::ZERO;
        let mut phases = Vec::new();
        for c in results.of_cell(&cell.id) {
            if c.phase {
                phase_time += c.time;
                let name = c.name.trim_start_matches("phase::");
                let mark = match c.status {
                    Status::Failed => " (failed)",
                    Status::Skipped => " (skipped)",
                    _ => "",
                };
                phases.push(format!("{name} {}{mark}", duration(c.time)));
            } else {
                counts.add(c.status);
                total.add(c.status);
                check_time += c.time;
            }
        }
        // A cell's phases cover its checks (suites is one phase); without phases, the checks' sum.
        let time = if phases.is_empty() {
            check_time
        } else {
            phase_time
        };
        total_time += time;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            code(&cell.id),
            counts.passed,
            counts.failed,
            counts.skipped,
            counts.flaky,
            duration(time),
            if phases.is_empty() {
                "-".to_string()
            } else {
                text(&phases.join(", "))
            }
        );
    }
    if results.cells.len() > 1 {
        let _ = writeln!(
            out,
            "| **all {} cells** | {} | {} | {} | {} | {} | |",
            results.cells.len(),
            total.passed,
            total.failed,
            total.skipped,
            total.flaky,
            duration(total_time)
        );
    }
}

fn item(results: &Results, c: &CheckResult, with_artifacts: bool, out: &mut String) {
    let _ = write!(out, "- {} {}", code(&c.cell), code(&c.name));
    if let Some(note) = &c.note {
        let _ = write!(out, ": {}", text(note));
    }
    out.push('\n');
    if with_artifacts
        && let Some(dir) = results
            .cells
            .iter()
            .find(|cell| cell.id == c.cell)
            .and_then(|cell| cell.artifacts.as_ref())
    {
        let _ = writeln!(out, "  artifacts: {}", code(dir));
    }
}

fn section(title: &str, list: &[CheckResult], results: &Results, out: &mut String) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### {title} ({})\n", list.len());
    for c in list {
        item(results, c, title == "New failures", out);
    }
}

/// The comparison with a baseline: counts, then each category that is not empty.
pub fn diff_markdown(baseline_name: &str, baseline: &Results, current: &Results) -> String {
    let d = Diff::between(baseline, current);
    let mut out = String::new();
    let _ = writeln!(out, "## Compared with {}\n", code(baseline_name));
    if let Some(line) = provenance_line("Baseline", baseline) {
        let _ = writeln!(out, "{line}\n");
    }
    let _ = writeln!(
        out,
        "| New failures | Fixed | Still failing | Newly skipped | Flaky | Not run now |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n| {} | {} | {} | {} | {} | {} |",
        d.new_failures.len(),
        d.fixed.len(),
        d.still_failing.len(),
        d.newly_skipped.len(),
        d.flaky.len(),
        d.not_run.len()
    );
    section("New failures", &d.new_failures, current, &mut out);
    section("Fixed", &d.fixed, current, &mut out);
    section("Still failing", &d.still_failing, current, &mut out);
    section("Newly skipped", &d.newly_skipped, current, &mut out);
    section("Flaky", &d.flaky, current, &mut out);
    not_run(&d.not_run, baseline, current, &mut out);
    out
}

/// Results in the baseline only. A cell missing as a whole (a shard that left no report) is
/// one line, not one per check.
fn not_run(list: &[CheckResult], baseline: &Results, current: &Results, out: &mut String) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n### Not run now, in the baseline only ({})\n",
        list.len()
    );
    let mut whole_cells_done: Vec<&str> = Vec::new();
    for c in list {
        if current.cells.iter().any(|cell| cell.id == c.cell) {
            item(baseline, c, false, out);
        } else if !whole_cells_done.contains(&c.cell.as_str()) {
            whole_cells_done.push(&c.cell);
            let all: Vec<&CheckResult> = list.iter().filter(|x| x.cell == c.cell).collect();
            let failing = all.iter().filter(|x| x.status.is_failure()).count();
            let _ = writeln!(
                out,
                "- {}: the whole cell is missing ({} results, {failing} failing in the baseline)",
                code(&c.cell),
                all.len()
            );
        }
    }
}

fn provenance_line(who: &str, r: &Results) -> Option<String> {
    let version = r.provenance.harness_version.as_deref()?;
    let commit = r.provenance.harness_commit.as_deref().unwrap_or("unknown");
    Some(format!(
        "{who}: harness {} at {}",
        text(version),
        code(commit)
    ))
}

/// The whole summary: results per cell, the comparison when a baseline is given, failures.
pub fn markdown(results: &Results, baseline: Option<(&str, &Results)>) -> String {
    let mut out = String::new();
    let mut all = Counts::default();
    for c in results.checks.iter().filter(|c| !c.phase) {
        all.add(c.status);
    }
    let _ = writeln!(
        out,
        "## Results: {} passed, {} failed, {} skipped, {} flaky in {} cell(s)\n",
        all.passed,
        all.failed,
        all.skipped,
        all.flaky,
        results.cells.len()
    );
    if let Some(line) = provenance_line("Run", results) {
        let _ = writeln!(out, "{line}\n");
    }
    cells_table(results, &mut out);
    if let Some((name, base)) = baseline {
        out.push('\n');
        out.push_str(&diff_markdown(name, base, results));
    }
    let failures: Vec<&CheckResult> = results
        .checks
        .iter()
        .filter(|c| c.status.is_failure())
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n## Failures ({})\n", failures.len());
        for c in failures {
            item(results, c, true, &mut out);
        }
    }
    out
}

/// Keep `md` within `max` bytes (0: no limit), cutting at a line and saying so.
pub fn truncate(md: String, max: usize) -> String {
    if max == 0 || md.len() <= max {
        return md;
    }
    let note = format!(
        "\n> **Truncated**: this summary is {} bytes, over the {max}-byte limit. The full text is in \
         the run's summary artifact, or run `harness report summary` on the report.\n",
        md.len()
    );
    let mut budget = max.saturating_sub(note.len()).min(md.len());
    while !md.is_char_boundary(budget) {
        budget -= 1;
    }
    // The note starts with a blank line, so a cut inside a table still ends the table there.
    let cut = md[..budget].rfind('\n').map_or(0, |i| i + 1);
    let mut out = md[..cut].to_string();
    out.push_str(&note);
    out
}
