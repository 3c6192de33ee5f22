//! `report merge`: join the JUnit files of several shards into one.

use super::junit::write_atomically;
use crate::errors::InputError;
use quick_junit::Report;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Read every input, refuse overlapping shards, and return the joined report.
pub fn merge(inputs: &[PathBuf]) -> Result<Report, InputError> {
    if inputs.is_empty() {
        return Err(InputError::Report(
            "report merge needs at least one JUnit file: report merge A.xml B.xml -o OUT".into(),
        ));
    }
    let mut merged: Option<Report> = None;
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in inputs {
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
            path: path.clone(),
            source,
        })?;
        let report = Report::deserialize_from_str(&text).map_err(|e| {
            InputError::Report(format!(
                "{}: is not a JUnit report ({e}); pass files written by `harness` or another JUnit writer",
                path.display()
            ))
        })?;
        for suite in &report.test_suites {
            let name = suite.name.as_str().to_string();
            if let Some(first) = seen.insert(name.clone(), path.clone()) {
                return Err(InputError::Report(format!(
                    "testsuite '{name}' is in both {} and {}: the shards overlap; merge each shard once",
                    first.display(),
                    path.display()
                )));
            }
        }
        match merged.as_mut() {
            None => merged = Some(report),
            Some(m) => {
                let time = m
                    .time
                    .zip(report.time)
                    .map(|(a, b)| a + b)
                    .or(m.time)
                    .or(report.time);
                m.add_test_suites(report.test_suites);
                if let Some(t) = time {
                    m.set_time(t);
                }
            }
        }
    }
    Ok(merged.expect("at least one input"))
}

pub fn merge_to(inputs: &[PathBuf], out: &Path) -> Result<Report, InputError> {
    let report = merge(inputs)?;
    write_atomically(&report, out)?;
    Ok(report)
}
