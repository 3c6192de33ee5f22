//! Regenerates `harness/data/values-keys/<minor>.json` from the published Cilium charts.
//!
//!     cargo run -p harness --example gen-values-keys [-- --check] [CHARTS_DIR]
//!
//! CHARTS_DIR holds `cilium-<version>.tgz` files (default: `$HARNESS_CHARTS_DIR`, else
//! `../shared/charts` beside the checkout) and may hold their `SHA256SUMS`. With `--check` it
//! writes nothing and exits 1 when a committed table differs from what the charts give.

#[path = "../tests/support/values_keys.rs"]
mod values_keys;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                eprintln!("usage: gen-values-keys [--check] [CHARTS_DIR]");
                return ExitCode::SUCCESS;
            }
            other if dir.is_none() && !other.starts_with('-') => dir = Some(PathBuf::from(other)),
            other => {
                eprintln!(
                    "error: unexpected argument {other}; usage: gen-values-keys [--check] [CHARTS_DIR]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let dir = dir.unwrap_or_else(values_keys::default_charts_dir);
    let tables = match values_keys::build_tables(&dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stale = 0;
    for table in &tables {
        let path = values_keys::table_path(table);
        let text = table.to_text();
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            eprintln!("{}: current ({} keys)", path.display(), table.keys.len());
        } else if check {
            eprintln!("{}: out of date", path.display());
            stale += 1;
        } else {
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
            eprintln!("{}: written ({} keys)", path.display(), table.keys.len());
        }
    }
    if stale > 0 {
        eprintln!("run `cargo run -p harness --example gen-values-keys` and commit the tables");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
