//! The upgrade gate (`harness upgrade`): a starting point A (profile, Cilium, Talos, Kubernetes),
//! the versions to move to (B), and what the gate runs between them. This module decides
//! whether A→B is a path upstream tests, plans both ends (B's values are linted against B's
//! chart) and orders the moves; [`gate`] judges the outcome, [`disruption`] the workload that
//! runs through the upgrade, [`text`] prints a dry run.

pub mod disruption;
pub mod gate;
pub mod live;
pub mod text;

use crate::errors::InputError;
use crate::matrix::Cell;
use crate::plan::{CellPlan, PlanOptions, plan};
use crate::profile::overlay::Overlay;
use crate::profile::{Catalog, GatewayApiCrds};
use crate::releases::{Minor, ReleaseTable};
use crate::version::{CiliumVersion, GatewayApiVersion, KubernetesVersion, TalosVersion};

/// The versions to move to; `None` keeps the starting one.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub cilium: Option<CiliumVersion>,
    pub talos: Option<TalosVersion>,
    pub kubernetes: Option<KubernetesVersion>,
}

/// What happens to the Gateway API CRDs when Cilium moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrdMove {
    /// The profile installs none.
    None,
    /// Applied before the new Cilium, which needs at least this release.
    Apply {
        installed: GatewayApiCrds,
        to: GatewayApiCrds,
    },
    /// What is installed stays: the new Cilium works with it, and CRDs never move back.
    Keep { installed: GatewayApiCrds },
}

/// One component moved. A gate applies its moves in the order of this enum: Talos first (a newer
/// Kubernetes may need it), then Kubernetes, then Cilium (its new minor may need the newer
/// Kubernetes, and its values are checked against the cluster it lands on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    Talos {
        from: TalosVersion,
        to: TalosVersion,
    },
    Kubernetes {
        from: KubernetesVersion,
        to: KubernetesVersion,
    },
    Cilium {
        from: CiliumVersion,
        to: CiliumVersion,
        /// The `upgradeCompatibility` value: the minor moved from.
        compatibility: Minor,
        crds: CrdMove,
    },
}

/// Everything a gate runs, decided before anything is created.
#[derive(Debug)]
pub struct UpgradePlan {
    /// A, as installed first.
    pub before: CellPlan,
    /// B: the values Cilium B gets (with `upgradeCompatibility`), linted against its chart.
    pub after: CellPlan,
    pub moves: Vec<Move>,
    /// Back to A's Cilium on B's Talos and Kubernetes, with its own Cilium move.
    pub downgrade: Option<(CellPlan, Move)>,
    /// Paths that work but that upstream does not test, said before the run.
    pub warnings: Vec<String>,
}

impl UpgradePlan {
    pub fn cilium_move(&self) -> Option<&Move> {
        self.moves.iter().find(|m| matches!(m, Move::Cilium { .. }))
    }
}

fn minor<T: Into<Minor>>(v: T) -> Minor {
    v.into()
}

/// Checks the path from `before` (a one-cell plan) to `targets` and plans B (and the downgrade),
/// each problem as its own error so all are reported at once.
pub fn plan_upgrade(
    before: CellPlan,
    targets: &Targets,
    downgrade: bool,
    catalog: &Catalog,
    overlay: &Overlay,
    options: &PlanOptions,
) -> Result<UpgradePlan, Vec<InputError>> {
    let table = ReleaseTable::embedded();
    let rules = &table.upgrades;
    let a = before.cell.clone();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();

    let b = Cell {
        profile: a.profile.clone(),
        cilium: targets.cilium.clone().unwrap_or_else(|| a.cilium.clone()),
        talos: targets.talos.clone().unwrap_or_else(|| a.talos.clone()),
        kubernetes: targets
            .kubernetes
            .clone()
            .unwrap_or_else(|| a.kubernetes.clone()),
    };
    if b.cilium == a.cilium && b.talos == a.talos && b.kubernetes == a.kubernetes {
        problems.push(InputError::problem(
            format!(
                "nothing to upgrade: the starting point is Cilium {}, Talos {} and Kubernetes {}",
                a.cilium, a.talos, a.kubernetes
            ),
            "pass --to-cilium-version, --to-talos-version or --to-kubernetes-version with a version other than the starting one",
        ));
    }
    if downgrade && targets.cilium.is_none() {
        problems.push(InputError::problem(
            "--downgrade goes back to the starting Cilium, but no --to-cilium-version moves it",
            "pass --to-cilium-version, or leave out --downgrade (Talos and Kubernetes downgrades are not supported upstream)",
        ));
    }
    let step = |what: &str, rule: &crate::releases::UpgradeRule, from: Minor, to: Minor| {
        rule.refuses(what, from, to).map(|why| {
            InputError::problem(
                why,
                format!("see the release table's source: {}", rule.source.trim()),
            )
        })
    };
    problems.extend(step(
        "Talos",
        &rules.talos,
        minor(a.talos.minor()),
        minor(b.talos.minor()),
    ));
    problems.extend(step(
        "Kubernetes",
        &rules.kubernetes,
        minor(a.kubernetes.minor()),
        minor(b.kubernetes.minor()),
    ));
    problems.extend(step(
        "Cilium",
        &rules.cilium.rule(),
        minor(a.cilium.minor()),
        minor(b.cilium.minor()),
    ));
    // Every version must be one the table knows (a typo, a release it does not cover).
    for e in [
        b.talos.release().err(),
        b.cilium.release().err(),
        b.talos.refuses(&b.kubernetes).err(),
    ]
    .into_iter()
    .flatten()
    {
        problems.push(e);
    }
    // The cluster between moves: Talos B must run Kubernetes A before Kubernetes moves.
    if b.talos != a.talos
        && let Ok(Some(why)) = b.talos.refuses(&a.kubernetes)
    {
        problems.push(InputError::problem(
            format!("after the Talos upgrade, {why} (Kubernetes moves after Talos)"),
            format!(
                "upgrade Kubernetes in a gate of its own first, or pick a Talos that runs {}",
                a.kubernetes
            ),
        ));
    }
    if let Ok(Some(why)) = b.talos.refuses(&b.kubernetes) {
        problems.push(InputError::problem(
            why,
            "pick --to-kubernetes-version inside the Talos release's window",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let plan_one = |cell: &Cell, from: Option<Minor>| -> Result<CellPlan, InputError> {
        let mut p = plan(
            std::slice::from_ref(cell),
            vec![],
            catalog,
            overlay,
            options,
        )?
        .cells
        .remove(0);
        if let Some(from) = from {
            set_compatibility(&mut p, from);
        }
        Ok(p)
    };
    let cilium_moves = b.cilium != a.cilium;
    let after = match plan_one(&b, cilium_moves.then(|| minor(a.cilium.minor()))) {
        Ok(p) => p,
        Err(e) => return Err(vec![e]),
    };
    if cilium_moves {
        let tested = &after
            .cell
            .cilium
            .release()
            .map_err(|e| vec![e])?
            .kubernetes_tested;
        if !tested.contains(&b.kubernetes) {
            warnings.push(format!(
                "Cilium {} is e2e-tested upstream on Kubernetes {} to {}, not {}",
                b.cilium, tested.min, tested.max, b.kubernetes
            ));
        }
    }
    if b.kubernetes != a.kubernetes {
        let tested = &a.cilium.release().map_err(|e| vec![e])?.kubernetes_tested;
        if !tested.contains(&b.kubernetes) {
            warnings.push(format!(
                "Cilium {} runs on Kubernetes {} between the Kubernetes and the Cilium move; it is e2e-tested upstream on {} to {}",
                a.cilium, b.kubernetes, tested.min, tested.max
            ));
        }
    }

    let mut moves = Vec::new();
    if b.talos != a.talos {
        moves.push(Move::Talos {
            from: a.talos.clone(),
            to: b.talos.clone(),
        });
    }
    if b.kubernetes != a.kubernetes {
        moves.push(Move::Kubernetes {
            from: a.kubernetes.clone(),
            to: b.kubernetes.clone(),
        });
    }
    let mut after = after;
    if cilium_moves {
        let crds = crd_move(
            before.gateway_api.as_ref(),
            after.gateway_api.as_ref(),
            &b.cilium,
        )
        .map_err(|e| vec![e])?;
        // What B installs is what the move leaves, never less than what A put there.
        after.gateway_api = match &crds {
            CrdMove::None => None,
            CrdMove::Apply { to, .. } => Some(to.clone()),
            CrdMove::Keep { installed } => Some(installed.clone()),
        };
        moves.push(Move::Cilium {
            from: a.cilium.clone(),
            to: b.cilium.clone(),
            compatibility: minor(a.cilium.minor()),
            crds,
        });
    }

    let downgrade = if downgrade && cilium_moves {
        let d = Cell {
            cilium: a.cilium.clone(),
            ..b.clone()
        };
        let mut back = plan_one(&d, Some(minor(b.cilium.minor()))).map_err(|e| vec![e])?;
        let crds = crd_move(
            after.gateway_api.as_ref(),
            back.gateway_api.as_ref(),
            &a.cilium,
        )
        .map_err(|e| vec![e])?;
        back.gateway_api = after.gateway_api.clone();
        let m = Move::Cilium {
            from: b.cilium.clone(),
            to: a.cilium.clone(),
            compatibility: minor(b.cilium.minor()),
            crds,
        };
        Some((back, m))
    } else {
        None
    };

    Ok(UpgradePlan {
        before,
        after,
        moves,
        downgrade,
        warnings,
    })
}

/// The chart value Cilium's upgrade guide asks for, set to the minor moved from.
fn set_compatibility(cell: &mut CellPlan, from: Minor) {
    let key = &ReleaseTable::embedded().upgrades.cilium.compatibility_value;
    if let Some(map) = cell.values.as_object_mut() {
        map.insert(key.clone(), serde_json::Value::String(from.to_string()));
    }
}

/// Gateway API CRDs for Cilium `to`, given what is installed and what `to` would install on a
/// fresh cluster: applied when newer, kept when `to` works with what is there, refused when
/// `to` needs CRDs below what is installed (they never move back; from v1.5 the bundle's own
/// admission policy refuses older CRDs).
pub fn crd_move(
    installed: Option<&GatewayApiCrds>,
    wanted: Option<&GatewayApiCrds>,
    to: &CiliumVersion,
) -> Result<CrdMove, InputError> {
    let (installed, wanted) = match (installed, wanted) {
        (None, None) => return Ok(CrdMove::None),
        (None, Some(w)) => {
            // A profile whose CRDs only B installs: nothing installed to compare with.
            return Ok(CrdMove::Apply {
                installed: w.clone(),
                to: w.clone(),
            });
        }
        (Some(i), None) => {
            return Ok(CrdMove::Keep {
                installed: i.clone(),
            });
        }
        (Some(i), Some(w)) => (i, w),
    };
    let version = |c: &GatewayApiCrds| {
        GatewayApiVersion::parse(&c.version).map_err(|e| {
            InputError::problem(e.to_string(), "fix the profile's gateway_api.version")
        })
    };
    let (have, want) = (version(installed)?, version(wanted)?);
    if installed.channel != wanted.channel {
        return Err(InputError::problem(
            format!(
                "the Gateway API CRDs would change channel from {} to {}",
                installed.channel.as_str(),
                wanted.channel.as_str()
            ),
            "keep the profile's channel the same at both ends of the upgrade",
        ));
    }
    if want > have {
        return Ok(CrdMove::Apply {
            installed: installed.clone(),
            to: wanted.clone(),
        });
    }
    if want == have {
        return Ok(CrdMove::Keep {
            installed: installed.clone(),
        });
    }
    let release = to.release()?;
    match release.gateway_api.refuses(&have) {
        None => Ok(CrdMove::Keep {
            installed: installed.clone(),
        }),
        Some(why) => {
            let rule = &ReleaseTable::embedded().upgrades.gateway_api;
            let policy = if have >= rule.no_downgrade_below {
                format!(
                    "; from {} the CRD bundle's safe-upgrades admission policy refuses older CRDs",
                    rule.no_downgrade_below
                )
            } else {
                String::new()
            };
            Err(InputError::problem(
                format!(
                    "Cilium {to} does not work with the installed Gateway API {have} CRDs ({why}), and the harness never moves CRDs below what is installed{policy}"
                ),
                format!(
                    "gate this path with a profile without Gateway API, or leave out --downgrade; Cilium {} works with Gateway API {} up to below {}",
                    release.minor,
                    release.gateway_api.tolerates.min,
                    release.gateway_api.tolerates.below
                ),
            ))
        }
    }
}

#[cfg(test)]
mod orchestration_tests;
#[cfg(test)]
mod tests;
