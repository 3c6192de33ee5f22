//! `harness upgrade --dry-run`: the phases in order, the versions at each end and the exact
//! commands the gate would run, from the same values the run uses.

use super::{CrdMove, Move, UpgradePlan};
use crate::install::helm::HelmInstall;
use crate::releases::ReleaseTable;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

/// What a dry run prints besides the plan: where the run would write and with which tools.
pub struct DryRun {
    pub run_id: String,
    pub cluster: String,
    /// The run directory: talosconfig, kubeconfig and values live here (mode 0600).
    pub run_dir: PathBuf,
    /// Control planes first, then workers, as they are replaced.
    pub nodes: Vec<String>,
    pub control_planes: u32,
    pub workers: u32,
    pub image_repo: String,
    /// The install's helm invocation with A's version; the moves change only the version.
    pub helm: HelmInstall,
    pub talosctl: String,
    pub ready_bound: Duration,
}

fn crds(c: &crate::profile::GatewayApiCrds) -> String {
    format!("Gateway API {} {} CRDs", c.version, c.channel.as_str())
}

fn secs(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub fn render(plan: &UpgradePlan, d: &DryRun) -> String {
    let a = &plan.before.cell;
    let b = &plan.after.cell;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "harness upgrade (dry run: nothing is created)");
    let _ = writeln!(w, "profile: {}", a.profile);
    let _ = writeln!(
        w,
        "from: Cilium {}, Talos {}, Kubernetes {}",
        a.cilium, a.talos, a.kubernetes
    );
    let _ = writeln!(
        w,
        "to:   Cilium {}, Talos {}, Kubernetes {}",
        b.cilium, b.talos, b.kubernetes
    );
    let _ = writeln!(
        w,
        "run id: {}; run directory: {}",
        d.run_id,
        d.run_dir.display()
    );
    for warning in &plan.warnings {
        let _ = writeln!(w, "warning: {warning}");
    }
    let _ = writeln!(w);
    let mut n = 0;
    let mut phase = |w: &mut String, name: &str, what: String| {
        n += 1;
        let _ = writeln!(w, "{n}. {name}: {what}");
    };

    phase(
        w,
        "provision",
        format!(
            "Talos-in-Docker cluster {} ({} control plane(s) + {} worker(s)), image {}:{}, Kubernetes {}",
            d.cluster, d.control_planes, d.workers, d.image_repo, a.talos, a.kubernetes
        ),
    );
    let mut install = format!("Cilium {}", a.cilium);
    if let Some(c) = &plan.before.gateway_api {
        let _ = write!(install, ", {} applied first (server-side)", crds(c));
    }
    phase(w, "install", install);
    let _ = writeln!(w, "   $ {}", command(&d.helm, None));
    phase(
        w,
        "suites@before",
        format!("{} check(s)", plan.before.checks_to_run()),
    );
    let disruption = &ReleaseTable::embedded().disruption;
    phase(
        w,
        "disruption-start",
        format!(
            "namespace {}: 3 servers (`{}`), 5 clients (`{}`) holding TCP connections through a ClusterIP Service, image {}; restart counts, agent restarts, cilium_drop_count_total and agent error lines recorded",
            super::live::NAMESPACE,
            disruption.server_command.join(" "),
            disruption.client_command.join(" "),
            disruption.image
        ),
    );
    phase(w, "upgrade", "in this order:".into());
    for m in &plan.moves {
        move_lines(w, m, d);
    }
    phase(
        w,
        "readiness",
        format!(
            "every Cilium workload the values turn on and every node Ready within {}",
            secs(d.ready_bound)
        ),
    );
    phase(w, "disruption", judged(plan));
    phase(
        w,
        "suites@after",
        format!("{} check(s)", plan.after.checks_to_run()),
    );
    if let Some((back, m)) = &plan.downgrade {
        phase(w, "downgrade", "Cilium back to where it started:".into());
        move_lines(w, m, d);
        phase(
            w,
            "downgrade-readiness",
            format!("as above, within {}", secs(d.ready_bound)),
        );
        phase(w, "downgrade-disruption", judged(plan));
        phase(
            w,
            "suites@after-downgrade",
            format!("{} check(s)", back.checks_to_run()),
        );
    }
    phase(
        w,
        "destroy",
        format!(
            "containers, volumes, network and run directory of {}",
            d.cluster
        ),
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "gate: a check that passed before and fails after{} is a regression (exit 1), as are an interrupted connection and a readiness bound exceeded; checks failing before are reported, not counted; a gate that cannot be carried out exits 3",
        if plan.downgrade.is_some() {
            " (or after the downgrade)"
        } else {
            ""
        }
    );
    out
}

fn judged(plan: &UpgradePlan) -> String {
    if plan.moves.iter().any(|m| matches!(m, Move::Talos { .. })) {
        return "not judged: a Talos move replaces every node, which restarts its pods and agent by design".into();
    }
    "client and server restart counts unchanged, no agent restart, no cilium_drop_count_total reason outside cilium-cli's expected list (when the agents serve metrics), no new error message in agent logs".into()
}

fn command(helm: &HelmInstall, version: Option<&str>) -> String {
    let mut h = helm.clone();
    if let Some(v) = version {
        h.version = v.to_string();
    }
    std::iter::once(h.helm.display().to_string())
        .chain(h.args())
        .collect::<Vec<_>>()
        .join(" ")
}

fn move_lines(w: &mut String, m: &Move, d: &DryRun) {
    match m {
        Move::Talos { from, to } => {
            let _ = writeln!(
                w,
                "   - Talos {from} -> {to}: each node container replaced by one of {}:{to} on the same volumes, IP, hostname and labels (the harness's own mechanism: `talosctl upgrade` does not run on container nodes), control planes one at a time, then workers; each must report Talos {to} and be Ready within {} before the next:",
                d.image_repo,
                secs(d.ready_bound)
            );
            let _ = writeln!(w, "     {}", d.nodes.join(", "));
        }
        Move::Kubernetes { from, to } => {
            let _ = writeln!(w, "   - Kubernetes {from} -> {to}:");
            let _ = writeln!(
                w,
                "     $ {} {}",
                d.talosctl,
                talos_docker::talosctl::upgrade_k8s_args(
                    &d.run_dir.join(talos_docker::talosctl::TALOSCONFIG),
                    &to.to_string()
                )
                .join(" ")
            );
        }
        Move::Cilium {
            from,
            to,
            compatibility,
            crds: crd,
        } => {
            let key = &ReleaseTable::embedded().upgrades.cilium.compatibility_value;
            let _ = writeln!(
                w,
                "   - Cilium {from} -> {to} with the same profile values, {key}: \"{compatibility}\" (values checked against Cilium {to}'s chart):"
            );
            match crd {
                CrdMove::None => {}
                CrdMove::Apply {
                    installed,
                    to: next,
                } if installed != next => {
                    let _ = writeln!(
                        w,
                        "     apply {} (installed: {}; never moved below what is installed)",
                        crds(next),
                        installed.version
                    );
                }
                CrdMove::Apply { to: next, .. } => {
                    let _ = writeln!(w, "     apply {}", crds(next));
                }
                CrdMove::Keep { installed } => {
                    let _ = writeln!(
                        w,
                        "     keep the installed {} (Cilium {to} works with them; never moved below what is installed)",
                        crds(installed)
                    );
                }
            }
            let _ = writeln!(w, "     $ {}", command(&d.helm, Some(&to.to_string())));
        }
    }
}
