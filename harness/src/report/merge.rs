//! `report merge`: join the JUnit files of several shards into one. Testsuites of the same name
//! (nextest names one per test binary in every shard) become one; the same testcase in two
//! inputs means the shards overlap, which is refused rather than counted twice.

use super::junit::write_atomically;
use super::read;
use crate::errors::InputError;
use quick_junit::{Report, TestSuite};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn absorb(into: &mut TestSuite, from: TestSuite) {
    into.time = match (into.time, from.time) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    for p in from.properties {
        if !into.properties.contains(&p) {
            into.properties.push(p);
        }
    }
    let join = |a: &mut Option<quick_junit::XmlString>, b: Option<quick_junit::XmlString>| {
        *a = match (a.take(), b) {
            (Some(x), Some(y)) => Some(format!("{}\n{}", x.as_str(), y.as_str()).into()),
            (x, y) => x.or(y),
        };
    };
    join(&mut into.system_out, from.system_out);
    join(&mut into.system_err, from.system_err);
    for (k, v) in from.extra {
        into.extra.entry(k).or_insert(v);
    }
    into.test_cases.extend(from.test_cases);
}

/// Read every input, refuse overlapping shards, and return the joined report.
pub fn merge(inputs: &[PathBuf]) -> Result<Report, InputError> {
    if inputs.is_empty() {
        return Err(InputError::Report(
            "report merge needs at least one JUnit file: report merge A.xml B.xml -o OUT".into(),
        ));
    }
    let mut name = None;
    let mut time = None;
    let mut suites: Vec<TestSuite> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    // (suite, classname, testcase) -> the file it came from.
    let mut seen: BTreeMap<(String, String, String), &PathBuf> = BTreeMap::new();
    for path in inputs {
        let report = read::read(path)?;
        name = name.or(report.name);
        time = match (time, report.time) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        for suite in report.test_suites {
            let suite_name = suite.name.as_str().to_string();
            for case in &suite.test_cases {
                let key = (
                    suite_name.clone(),
                    case.classname
                        .as_ref()
                        .map_or(String::new(), |c| c.as_str().to_string()),
                    case.name.as_str().to_string(),
                );
                if let Some(first) = seen.get(&key) {
                    return Err(InputError::Report(format!(
                        "testcase '{}' of testsuite '{suite_name}' is in both {} and {}: the shards overlap; merge each shard once",
                        key.2,
                        first.display(),
                        path.display()
                    )));
                }
                seen.insert(key, path);
            }
            match by_name.get(&suite_name) {
                Some(&i) => absorb(&mut suites[i], suite),
                None => {
                    by_name.insert(suite_name, suites.len());
                    suites.push(suite);
                }
            }
        }
    }
    let mut merged = Report::new(name.unwrap_or_else(|| "merged".into()));
    merged.test_suites = suites;
    read::recount(&mut merged);
    if let Some(t) = time {
        merged.set_time(t);
    }
    Ok(merged)
}

/// The file a path names, or would name once created: symlinks and `..` resolved.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Refuse an output that is one of the inputs (by any name: relative, `..`, a symlink or a hard
/// link), before anything is read or written: writing it would destroy a shard.
pub fn refuse_output_among_inputs(inputs: &[PathBuf], out: &Path) -> Result<(), InputError> {
    let target = resolved(out);
    for input in inputs {
        if same_file(input, out) || (target.is_some() && resolved(input) == target) {
            return Err(InputError::Report(format!(
                "the output {} is also an input ({}): writing it would overwrite that shard; write the merged report to a new file, e.g. -o reports/junit.xml",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

pub fn merge_to(inputs: &[PathBuf], out: &Path) -> Result<Report, InputError> {
    refuse_output_among_inputs(inputs, out)?;
    let report = merge(inputs)?;
    write_atomically(&report, out)?;
    Ok(report)
}
