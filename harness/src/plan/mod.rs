//! Planning: for every cell, the values it installs, the features they give, what the lint and
//! the compatibility tables say, and which checks apply. Listing only: it never touches Docker
//! or a cluster, so it is cheap enough to run before every run and on every nextest listing.

use crate::cluster::ClusterDescription;
use crate::errors::InputError;
use crate::matrix::{Cell, Excluded};
use crate::profile::features::{HostRequirement, derive, host_requirements};
use crate::profile::lint::{self, Basis, Finding, Severity};
use crate::profile::overlay::Overlay;
use crate::profile::{Catalog, Deviation, GatewayApiCrds, Profile, talos_patch};
use crate::values;
pub mod text;

use serde::Serialize;
use serde_json::Value;
use suites::{Applicability, CATALOG, CheckFilter, Features, RunContext, SuiteName};

/// A user's `--values` file, already parsed.
#[derive(Clone, Debug)]
pub struct ValuesFile {
    pub name: String,
    pub values: Value,
}

impl ValuesFile {
    pub fn parse(name: &str, text: &str) -> Result<Self, InputError> {
        let values: Value = serde_saphyr::from_str(text).map_err(|e| InputError::yaml(name, &e))?;
        if !values.is_object() {
            return Err(InputError::InvalidFile {
                file: name.to_string(),
                message: "Helm values must be a map at the top level".into(),
            });
        }
        Ok(ValuesFile {
            name: name.to_string(),
            values,
        })
    }
}

/// What a plan needs besides the matrix.
pub struct PlanOptions {
    pub values_files: Vec<ValuesFile>,
    pub filter: CheckFilter,
    /// Schedulable nodes per cluster: the workers, since Talos taints control planes.
    pub nodes: u32,
    pub external_target: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub description: String,
    pub seed: String,
    pub section: String,
    pub opt_in: bool,
}

impl From<&Profile> for ProfileSummary {
    fn from(p: &Profile) -> Self {
        ProfileSummary {
            name: p.name.clone(),
            description: p.description.clone(),
            seed: p.source.seed.clone(),
            section: p.source.section.clone(),
            opt_in: p.opt_in,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckPlan {
    pub name: String,
    pub applicability: Applicability,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuitePlan {
    pub suite: SuiteName,
    /// Set when the whole suite is skipped; each of its checks then carries the same reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub checks: Vec<CheckPlan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OverlayEntry {
    pub key: String,
    pub value: Value,
}

#[derive(Clone, Debug, Serialize)]
pub struct CellPlan {
    pub id: String,
    pub cell: Cell,
    pub profile: ProfileSummary,
    pub talos_image: String,
    pub gateway_api: Option<GatewayApiCrds>,
    pub features: Features,
    pub host_requirements: Vec<HostRequirement>,
    pub deviations: Vec<Deviation>,
    pub overlay: Vec<OverlayEntry>,
    pub values_files: Vec<String>,
    pub warnings: Vec<Finding>,
    pub suites: Vec<SuitePlan>,
    /// The merged Helm values, for rendering and installing.
    #[serde(skip)]
    pub values: Value,
    #[serde(skip)]
    pub talos_patch: talos_patch::Patch,
}

impl CellPlan {
    pub fn checks_to_run(&self) -> usize {
        self.suites
            .iter()
            .flat_map(|s| &s.checks)
            .filter(|c| c.applicability.applies())
            .count()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub cells: Vec<CellPlan>,
    pub excluded: Vec<Excluded>,
    /// Catalog profiles this matrix leaves out (opt-in ones, or a narrower selection).
    pub not_in_matrix: Vec<ProfileSummary>,
}

/// Compatibility facts about a cell that do not stop it from running.
fn compatibility(
    cell: &Cell,
    profile: &Profile,
    features: &Features,
) -> Result<Vec<Finding>, InputError> {
    let release = cell.cilium.release()?;
    let mut out = Vec::new();
    let (lo, hi) = release.kubernetes_tested;
    let k = cell.kubernetes.minor();
    if k < lo || k > hi {
        out.push(Finding {
            severity: Severity::Warning,
            basis: Basis::Compatibility,
            key: "kubernetes".into(),
            problem: format!(
                "Cilium {}.{} is e2e-tested upstream on Kubernetes {}.{} to {}.{}, not {}",
                release.minor.0, release.minor.1, lo.0, lo.1, hi.0, hi.1, cell.kubernetes
            ),
            fix: "expect the harness to be the first to try it; pin a tested Kubernetes version for a gate".into(),
        });
    }
    match (features.gateway_api, profile.gateway_api.crds()) {
        (true, None) => out.push(Finding {
            severity: Severity::Error,
            basis: Basis::Compatibility,
            key: "gateway_api".into(),
            problem: "gatewayAPI.enabled is true but the profile installs no Gateway API CRDs; Cilium's gateway controller will not start".into(),
            fix: format!("set gateway_api: {{version: {}, channel: standard}}", release.gateway_api),
        }),
        (_, Some(crds)) if crds.version != release.gateway_api => {
            let newer_breaks = release.minor == (1, 19)
                && crate::version::GatewayApiVersion::parse(&crds.version)
                    .is_ok_and(|v| v.minor() >= (1, 5));
            out.push(Finding {
                basis: Basis::Compatibility,
                severity: if newer_breaks { Severity::Error } else { Severity::Warning },
                key: "gateway_api.version".into(),
                problem: if newer_breaks {
                    format!(
                        "Cilium 1.19's operator crashes on Gateway API {} CRDs (TLSRoute v1alpha2 no longer served; cilium/cilium#44920)",
                        crds.version
                    )
                } else {
                    format!(
                        "Cilium {}.{} is built against Gateway API {}; this cell installs {}, which the gateway-api suite puts to the test",
                        release.minor.0, release.minor.1, release.gateway_api, crds.version
                    )
                },
                fix: format!("pin gateway_api.version: {}", release.gateway_api),
            });
        }
        _ => {}
    }
    Ok(out)
}

fn suites_for(ctx: &RunContext, filter: &CheckFilter) -> Vec<SuitePlan> {
    CATALOG
        .iter()
        .filter_map(|suite| {
            let checks: Vec<CheckPlan> = suite
                .checks
                .iter()
                .filter(|c| filter.selects(suite, c.name))
                .map(|c| CheckPlan {
                    name: format!("{}::{}", suite.name, c.name),
                    applicability: suite.check_runnability(c, ctx),
                })
                .collect();
            if checks.is_empty() {
                return None;
            }
            let skipped = match (suite.applies)(ctx) {
                Applicability::Skipped(why) => Some(why),
                Applicability::Applies => None,
            };
            Some(SuitePlan {
                suite: suite.name,
                checks,
                skipped,
            })
        })
        .collect()
}

/// Plan one cell: merge, derive, lint, decide applicability.
pub fn plan_cell(
    cell: &Cell,
    catalog: &Catalog,
    overlay: &Overlay,
    opts: &PlanOptions,
) -> Result<CellPlan, InputError> {
    plan_cell_on(
        cell,
        catalog,
        overlay,
        &ClusterDescription::talos_in_docker(overlay),
        opts,
    )
}

/// [`plan_cell`] for the cluster the cell runs on: the one description the lint checks the
/// values against and the Talos patch is derived from.
pub fn plan_cell_on(
    cell: &Cell,
    catalog: &Catalog,
    overlay: &Overlay,
    cluster: &ClusterDescription,
    opts: &PlanOptions,
) -> Result<CellPlan, InputError> {
    let profile = catalog.get(&cell.profile)?;
    // The overlay's conditional settings follow the profile's own features, so that a user's
    // values cannot switch on L2 announcements behind the lint's back.
    let profile_features = derive(&profile.values);
    let overlay_values = overlay.values(&profile_features);
    let mut merged = profile.values.clone();
    values::merge(&mut merged, &overlay_values);
    for f in &opts.values_files {
        values::merge(&mut merged, &f.values);
    }
    let features = derive(&merged);

    let mut findings = lint::values(&merged, &cell.cilium, cluster);
    findings.extend(compatibility(cell, profile, &features)?);
    let (errors, warnings): (Vec<Finding>, Vec<Finding>) = findings
        .into_iter()
        .partition(|f| f.severity == Severity::Error);
    if !errors.is_empty() {
        let mut layers = vec![
            format!("profile {}", profile.name),
            "talos-in-docker overlay".to_string(),
        ];
        layers.extend(opts.values_files.iter().map(|f| f.name.clone()));
        return Err(InputError::InvalidValues {
            context: format!("{} ({})", cell.id(), layers.join(" + ")),
            findings: errors,
        });
    }

    let ctx = RunContext {
        features: features.clone(),
        nodes: opts.nodes,
        external_target: opts.external_target.clone(),
    };
    Ok(CellPlan {
        id: cell.id(),
        cell: cell.clone(),
        profile: ProfileSummary::from(profile),
        talos_image: cell.talos.image(),
        gateway_api: profile.gateway_api.crds().cloned(),
        host_requirements: host_requirements(&features),
        deviations: profile.deviations.clone(),
        overlay: overlay
            .applicable(&profile_features)
            .into_iter()
            .map(|s| OverlayEntry {
                key: s.key.clone(),
                value: s.value.clone(),
            })
            .collect(),
        values_files: opts.values_files.iter().map(|f| f.name.clone()).collect(),
        warnings,
        suites: suites_for(&ctx, &opts.filter),
        talos_patch: talos_patch::patch(cluster, &features),
        features,
        values: merged,
    })
}

pub fn plan(
    cells: &[Cell],
    excluded: Vec<Excluded>,
    catalog: &Catalog,
    overlay: &Overlay,
    opts: &PlanOptions,
) -> Result<Plan, InputError> {
    let cluster = ClusterDescription::talos_in_docker(overlay);
    let cells = cells
        .iter()
        .map(|c| plan_cell_on(c, catalog, overlay, &cluster, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let not_in_matrix = catalog
        .profiles()
        .filter(|p| !cells.iter().any(|c| c.profile.name == p.name))
        .map(ProfileSummary::from)
        .collect();
    Ok(Plan {
        cells,
        excluded,
        not_in_matrix,
    })
}

/// A plan of the embedded catalog for tests: the given profiles on Cilium 1.18.4 and the
/// default Talos, with a check filter.
#[cfg(test)]
pub(crate) fn for_tests(profiles: &[&str], checks: &[&str]) -> Plan {
    use crate::matrix::{AxisFlags, MatrixSpec, expand};
    let catalog = Catalog::embedded();
    let flags = AxisFlags {
        profiles: profiles.iter().map(|s| s.to_string()).collect(),
        cilium_versions: vec!["1.18.4".into()],
        ..Default::default()
    };
    let (cells, excluded) = expand(&MatrixSpec::load(None, flags).unwrap(), &catalog).unwrap();
    let checks: Vec<String> = checks.iter().map(|s| s.to_string()).collect();
    let opts = PlanOptions {
        values_files: vec![],
        filter: CheckFilter::new(&[], &checks).unwrap(),
        nodes: 2,
        external_target: None,
    };
    plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap()
}
