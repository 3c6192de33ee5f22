//! `harness ls`: harness clusters and runs on this Docker host, with their age.

use super::args::StateArgs;
use super::connect;
use crate::errors::{Error, RunError};
use crate::run::Verdict;
use clap::Args;
use std::collections::BTreeMap;
use std::time::Duration;
use talos_docker::RunDir;
use talos_docker::cleanup::{self, Inventory};
use talos_docker::labels::Selector;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Also list run directories left here without Docker objects.
    #[command(flatten)]
    pub state: StateArgs,
}

/// One row of `ls`: the objects of one cluster of one run.
#[derive(Default)]
struct Row {
    containers: usize,
    running: usize,
    subnet: String,
    volumes: usize,
    age: Option<Duration>,
}

fn rows(inv: &Inventory) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    for o in inv.objects() {
        let key = (
            o.cluster().unwrap_or("?").to_string(),
            o.run_id().unwrap_or("?").to_string(),
        );
        let row = rows.entry(key).or_default();
        row.age = row.age.max(o.age());
        match o.kind {
            cleanup::Kind::Container => {
                row.containers += 1;
                row.running += usize::from(o.detail == "running");
            }
            cleanup::Kind::Network => row.subnet = o.detail.clone(),
            cleanup::Kind::Volume => row.volumes += 1,
        }
    }
    rows
}

pub fn format_age(age: Option<Duration>) -> String {
    let Some(age) = age else {
        return "?".to_string();
    };
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

pub async fn run(args: LsArgs) -> Result<Verdict, Error> {
    let engine = connect().await?;
    let inv = cleanup::inventory(&engine, &Selector::all())
        .await
        .map_err(|e| RunError::Docker {
            message: e.to_string(),
        })?;
    let rows = rows(&inv);
    let orphans: Vec<_> = RunDir::scan(&args.state.dir())
        .into_iter()
        .filter(|i| !rows.contains_key(&(i.cluster.clone(), i.run_id.clone())))
        .collect();
    if rows.is_empty() && orphans.is_empty() {
        println!("no harness clusters");
        return Ok(Verdict::Passed);
    }
    println!(
        "{:<30} {:<28} {:>7}  {:<13} {:>7}  NETWORK",
        "CLUSTER", "RUN ID", "AGE", "NODES", "VOLUMES"
    );
    for ((cluster, run), row) in &rows {
        println!(
            "{cluster:<30} {run:<28} {:>7}  {:<13} {:>7}  {}",
            format_age(row.age),
            format!("{}/{} running", row.running, row.containers),
            row.volumes,
            if row.subnet.is_empty() {
                "-"
            } else {
                &row.subnet
            },
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for o in orphans {
        println!(
            "{:<30} {:<28} {:>7}  {:<13} {:>7}  (run directory only: {})",
            o.cluster,
            o.run_id,
            format_age(Some(Duration::from_secs(now.saturating_sub(o.created)))),
            "-",
            "-",
            o.path.display()
        );
    }
    Ok(Verdict::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(format_age(Some(Duration::from_secs(42))), "42s");
        assert_eq!(format_age(Some(Duration::from_secs(600))), "10m");
        assert_eq!(format_age(Some(Duration::from_secs(7260))), "2h1m");
        assert_eq!(format_age(Some(Duration::from_secs(90000))), "1d1h");
        assert_eq!(format_age(None), "?");
    }
}
