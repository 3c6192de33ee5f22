//! `harness lint`: Helm values, LB pools and Service annotations checked for a Cilium version,
//! without a cluster. Findings go to stdout; any error-level finding refuses the files (exit 2).

use crate::errors::{Error, InputError};
use crate::profile::lint::{self, Finding, Severity};
use crate::run::Verdict;
use crate::version::CiliumVersion;
use clap::Args;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct LintArgs {
    /// The Cilium version to lint for [default: the newest in the release table].
    #[arg(long, default_value_t = crate::releases::ReleaseTable::embedded().newest_cilium().latest.to_string())]
    pub cilium_version: String,
    /// Helm values files, or manifests of CiliumLoadBalancerIPPool or Service objects.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn print_findings(file: &str, findings: &[Finding]) {
    for f in findings {
        let tag = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        println!("{file}: {tag}: {}: {}; fix: {}", f.key, f.problem, f.fix);
    }
}

pub fn run(args: &LintArgs) -> Result<Verdict, Error> {
    let cilium = CiliumVersion::parse(&args.cilium_version)?;
    cilium.release()?;
    let mut errors = 0;
    let mut with_errors = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
            path: path.clone(),
            source,
        })?;
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| InputError::yaml(&name, &e))?;
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let findings = match doc.get("kind").and_then(Value::as_str) {
                Some("CiliumLoadBalancerIPPool") => lint::lb_pool(doc, &cilium),
                Some("Service") => lint::service_annotations(doc),
                Some(other) => {
                    return Err(InputError::InvalidFile {
                        file: name,
                        message: format!(
                            "cannot lint kind {other}; pass Helm values, CiliumLoadBalancerIPPool or Service manifests"
                        ),
                    }
                    .into());
                }
                None => lint::values(doc, &cilium),
            };
            let n = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            if n > 0 && !with_errors.contains(&name) {
                with_errors.push(name.clone());
            }
            errors += n;
            print_findings(&name, &findings);
        }
    }
    if errors == 0 {
        Ok(Verdict::Passed)
    } else {
        Err(InputError::Lint {
            errors,
            files: with_errors.join(", "),
        }
        .into())
    }
}
