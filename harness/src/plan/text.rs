//! The plan as a person reads it.

use super::{CellPlan, Plan};
use crate::profile::lint::Severity;
use std::fmt::Write;

fn cell(out: &mut String, c: &CellPlan) {
    let _ = writeln!(out, "cell {}", c.id);
    let _ = writeln!(
        out,
        "  profile     {}: {}",
        c.profile.name, c.profile.description
    );
    let _ = writeln!(
        out,
        "  seed        {} ({})",
        c.profile.seed, c.profile.section
    );
    let _ = writeln!(
        out,
        "  versions    cilium {}, talos {} ({}), kubernetes {}",
        c.cell.cilium, c.cell.talos, c.talos_image, c.cell.kubernetes
    );
    if let Some(note) = &c.kubernetes_note {
        let _ = writeln!(out, "  kubernetes  {note}");
    }
    let forms: Vec<String> = c
        .talos_config
        .iter()
        .map(|t| format!("{} as {}", t.setting, t.form))
        .collect();
    let _ = writeln!(out, "  talos       {}", forms.join(", "));
    let mut features = c.features.enabled_names().join(", ");
    let _ = write!(features, "; routing {}", c.features.routing.as_str());
    let _ = writeln!(out, "  features    {features}");
    match &c.gateway_api {
        Some(g) => {
            let _ = writeln!(
                out,
                "  gateway api {} {} CRDs, applied before Cilium",
                g.version,
                g.channel.as_str()
            );
            if let Some(note) = &c.gateway_api_note {
                let _ = writeln!(out, "              ({note})");
            }
        }
        None => {
            let _ = writeln!(out, "  gateway api none");
        }
    }
    if c.host_requirements.is_empty() {
        let _ = writeln!(out, "  host needs  nothing beyond Docker");
    } else {
        for r in &c.host_requirements {
            let _ = writeln!(
                out,
                "  host needs  kernel module {} ({})",
                r.kernel_module, r.why
            );
        }
    }
    for n in &c.namespaces {
        let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "  namespace   {} ({}), created before Cilium: {}",
            n.name,
            labels.join(", "),
            n.why
        );
    }
    let overlay: Vec<String> = c
        .overlay
        .iter()
        .map(|e| format!("{}={}", e.key, e.value))
        .collect();
    let _ = writeln!(out, "  overlay     talos-in-docker: {}", overlay.join(", "));
    if !c.values_files.is_empty() {
        let _ = writeln!(out, "  values      {}", c.values_files.join(", "));
    }
    for d in &c.deviations {
        let _ = writeln!(
            out,
            "  deviation   {}: seed says {}, profile uses {}; {}",
            d.key, d.seed, d.used, d.why
        );
    }
    for w in &c.warnings {
        let tag = match w.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "  {tag:<11} {}: {}; {}", w.key, w.problem, w.fix);
    }
    for w in &c.waits {
        let _ = writeln!(out, "  waits for   {w}");
    }
    let _ = writeln!(out, "  checks      {} to run", c.checks_to_run());
    for s in &c.suites {
        match &s.skipped {
            Some(why) => {
                let _ = writeln!(out, "    skip  {}::* ({why})", s.suite);
            }
            None => {
                for check in &s.checks {
                    match &check.applicability {
                        suites::Applicability::Applies => {
                            let _ = writeln!(out, "    run   {}", check.name);
                        }
                        suites::Applicability::Skipped(why) => {
                            let _ = writeln!(out, "    skip  {} ({why})", check.name);
                        }
                    }
                }
            }
        }
    }
}

pub fn render(plan: &Plan, jobs: &crate::capacity::Jobs) -> String {
    let mut out = String::new();
    let checks: usize = plan.cells.iter().map(CellPlan::checks_to_run).sum();
    let _ = writeln!(
        out,
        "plan: {} cell(s), {} check(s) to run, {} combination(s) excluded",
        plan.cells.len(),
        checks,
        plan.excluded.len()
    );
    let _ = writeln!(out, "jobs: {jobs}");
    for p in &plan.not_in_matrix {
        let why = if p.opt_in { "opt-in" } else { "not selected" };
        let _ = writeln!(
            out,
            "not in this matrix ({why}): {} (seed {}): {}",
            p.name, p.seed, p.description
        );
    }
    for e in &plan.excluded {
        let _ = writeln!(out, "excluded {}: {}", e.cell.id(), e.reason);
    }
    for c in &plan.cells {
        out.push('\n');
        cell(&mut out, c);
    }
    out
}
