//! Planning: for every cell, the values it installs, the features they give, what the lint and
//! the compatibility tables say, and which checks apply. Listing only: it never touches Docker
//! or a cluster, so it is cheap enough to run before every run and on every nextest listing.

use crate::cluster::ClusterDescription;
use crate::errors::InputError;
use crate::matrix::{Cell, Excluded};
use crate::profile::features::{HostRequirement, derive, host_requirements};
use crate::profile::lint::{self, Basis, Finding, Severity};
use crate::profile::namespaces::{self, Namespace};
use crate::profile::overlay::Overlay;
use crate::profile::{Catalog, Deviation, GatewayApiCrds, Profile, talos_patch};
use crate::releases::{CiliumRelease, ReleaseTable, TalosRelease};
use crate::values;
use crate::version::{CiliumVersion, GatewayApiVersion};
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
        let values: Value = crate::yaml::from_str(text).map_err(|e| InputError::yaml(name, &e))?;
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
    /// The client outside the cluster north-south checks probe from; a Talos-in-Docker run
    /// always has one ([`talos_in_docker_outside`]).
    pub outside: Option<suites::OutsideClient>,
}

/// A Talos-in-Docker run's outside client: a container on the cluster's docker network, with
/// the lb-ipam suite's announced block taken from that network's subnet.
pub fn talos_in_docker_outside() -> suites::OutsideClient {
    suites::OutsideClient {
        origin: suites::OutsideOrigin::DockerNetwork,
        l2_block: Some(suites::L2Block::DockerSubnet),
    }
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

/// One Talos setting and the form the cell's release takes it in.
#[derive(Clone, Debug, Serialize)]
pub struct TalosSetting {
    pub setting: &'static str,
    pub form: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CellPlan {
    pub id: String,
    pub cell: Cell,
    pub profile: ProfileSummary,
    pub talos_image: String,
    /// Why the cell does not run its Talos release's default Kubernetes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_note: Option<String>,
    pub gateway_api: Option<GatewayApiCrds>,
    /// Why the Gateway API CRDs are not the release the cell's Cilium is built against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_api_note: Option<String>,
    /// How the cell's Talos release takes the settings the harness writes.
    pub talos_config: Vec<TalosSetting>,
    /// Namespaces created before Cilium is installed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespace>,
    pub features: Features,
    pub host_requirements: Vec<HostRequirement>,
    pub deviations: Vec<Deviation>,
    pub overlay: Vec<OverlayEntry>,
    pub values_files: Vec<String>,
    pub warnings: Vec<Finding>,
    /// What the install waits for: the workloads the chart creates for these values.
    pub waits: Vec<crate::install::waits::Workload>,
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

/// Which Gateway API CRDs a cell installs, and a note when they are not the release its Cilium
/// is built against. A pairing the release table knows to be broken is an error finding.
fn gateway_api_for(
    cell: &Cell,
    profile: &Profile,
    features: &Features,
    release: &CiliumRelease,
    findings: &mut Vec<Finding>,
) -> (Option<GatewayApiCrds>, Option<String>) {
    let support = &release.gateway_api;
    let Some(choice) = profile.gateway_api.choice() else {
        if features.gateway_api {
            findings.push(Finding {
                basis: Basis::Compatibility,
                severity: Severity::Error,
                key: "gateway_api".into(),
                problem: "gatewayAPI.enabled is true but the profile installs no Gateway API CRDs; Cilium's gateway controller will not start".into(),
                fix: "set gateway_api: {channel: standard}".into(),
            });
        }
        return (None, None);
    };
    let seed_minor = profile
        .cilium_version
        .as_deref()
        .and_then(|v| CiliumVersion::parse(v).ok())
        .map(|v| v.minor());
    let pin = choice
        .version
        .as_deref()
        .filter(|_| seed_minor.is_none_or(|m| m == cell.cilium.minor()));
    let Some(pin) = pin else {
        let crds = GatewayApiCrds {
            version: support.built_against.to_string(),
            channel: choice.channel,
        };
        return (Some(crds), None);
    };
    let crds = GatewayApiCrds {
        version: pin.to_string(),
        channel: choice.channel,
    };
    let version = match GatewayApiVersion::parse(pin) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding {
                basis: Basis::Compatibility,
                severity: Severity::Error,
                key: "gateway_api.version".into(),
                problem: e.to_string(),
                fix: format!("write it like {}", support.built_against),
            });
            return (Some(crds), None);
        }
    };
    let table = ReleaseTable::embedded();
    if !table.knows_gateway_api(&version) {
        let known: Vec<String> = table
            .gateway_api_releases
            .iter()
            .map(|g| g.version.to_string())
            .collect();
        findings.push(Finding {
            basis: Basis::Compatibility,
            severity: Severity::Error,
            key: "gateway_api.version".into(),
            problem: format!(
                "Gateway API {version} is not in the release table (it knows {})",
                known.join(", ")
            ),
            fix: format!(
                "pin one of those, or drop the version to install {}",
                support.built_against
            ),
        });
    } else if let Some(why) = support.refuses(&version) {
        findings.push(Finding {
            basis: Basis::Compatibility,
            severity: Severity::Error,
            key: "gateway_api.version".into(),
            problem: format!(
                "Cilium {} does not work with Gateway API {version}: {why}",
                release.minor
            ),
            fix: format!(
                "pin a release from {} below {} (Cilium {} is built against {})",
                support.tolerates.min,
                support.tolerates.below,
                release.minor,
                support.built_against
            ),
        });
    }
    let note = (version != support.built_against).then(|| {
        format!(
            "the profile's pin; Cilium {} is built against {} and works with {} up to below {}",
            release.minor, support.built_against, support.tolerates.min, support.tolerates.below
        )
    });
    (Some(crds), note)
}

/// Why the cell runs a Kubernetes other than its Talos default, when it does.
fn kubernetes_note(cell: &Cell, talos: &TalosRelease, release: &CiliumRelease) -> Option<String> {
    let default = &talos.kubernetes.default;
    if &cell.kubernetes == default {
        return None;
    }
    let tested = &release.kubernetes_tested;
    let pinned = ReleaseTable::embedded().kubernetes_for(talos, release);
    Some(
        if !tested.contains(default) && pinned == Some(&cell.kubernetes) {
            format!(
                "Talos {} defaults to {default}, outside what Cilium {} is e2e-tested on ({} to {}); pinned to the newest Kubernetes both support",
                cell.talos, release.minor, tested.min, tested.max
            )
        } else {
            format!(
                "Talos {} defaults to {default}; the matrix names {}",
                cell.talos, cell.kubernetes
            )
        },
    )
}

/// Compatibility facts about a cell that do not stop it from running.
fn compatibility(cell: &Cell, release: &CiliumRelease) -> Vec<Finding> {
    let tested = &release.kubernetes_tested;
    let mut out = Vec::new();
    if !tested.contains(&cell.kubernetes) {
        out.push(Finding {
            severity: Severity::Warning,
            basis: Basis::Compatibility,
            key: "kubernetes".into(),
            problem: format!(
                "Cilium {} is e2e-tested upstream on Kubernetes {} to {}, not {}",
                release.minor, tested.min, tested.max, cell.kubernetes
            ),
            fix: "expect the harness to be the first to try it; pin a tested Kubernetes version for a gate".into(),
        });
    }
    out
}

/// The settings this cell writes, each in its release's form.
fn talos_config(settings: &talos_patch::Settings, talos: &TalosRelease) -> Vec<TalosSetting> {
    let forms = &talos.config;
    let mut out = vec![TalosSetting {
        setting: "cni none",
        form: forms.cni_none.to_string(),
    }];
    if settings.kube_proxy_off {
        out.push(TalosSetting {
            setting: "kube-proxy off",
            form: forms.kube_proxy_off.to_string(),
        });
    }
    out.push(TalosSetting {
        setting: "kubeprism",
        form: forms.kubeprism.to_string(),
    });
    if settings.forward_kube_dns_to_host.is_some() {
        out.push(TalosSetting {
            setting: "host dns",
            form: forms.host_dns.to_string(),
        });
    }
    out
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

    let release = cell.cilium.release()?;
    let talos = cell.talos.release()?;
    let mut findings = lint::values(&merged, &cell.cilium, cluster);
    findings.extend(compatibility(cell, release));
    let (gateway_api, gateway_api_note) =
        gateway_api_for(cell, profile, &features, release, &mut findings);
    // Talos-in-Docker clusters have one control plane and `nodes` workers.
    let nodes = crate::install::waits::Nodes {
        control_planes: 1,
        workers: opts.nodes,
    };
    findings.extend(crate::install::waits::unschedulable(&merged, nodes));
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
            findings: errors
                .into_iter()
                .map(|f| crate::errors::ValueFinding {
                    key: f.key,
                    problem: f.problem,
                    fix: f.fix,
                })
                .collect(),
        });
    }

    let talos_settings = talos_patch::settings(cluster, &merged, &features);
    let ctx = RunContext {
        features: features.clone(),
        nodes: opts.nodes,
        external_target: opts.external_target.clone(),
        outside: opts.outside.clone(),
    };
    Ok(CellPlan {
        id: cell.id(),
        cell: cell.clone(),
        profile: ProfileSummary::from(profile),
        talos_image: cell.talos.image(),
        kubernetes_note: kubernetes_note(cell, talos, release),
        gateway_api,
        gateway_api_note,
        talos_config: talos_config(&talos_settings, talos),
        namespaces: namespaces::prepared(&merged),
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
        waits: crate::install::waits::workloads(&merged),
        suites: suites_for(&ctx, &opts.filter),
        talos_patch: talos_patch::patch(&talos_settings, talos),
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
    plan_on(cells, excluded, catalog, overlay, &cluster, opts)
}

/// [`plan`] for cells that run on `cluster`: the one the harness builds, or one `harness check`
/// read from the running cluster, whose facts the values are linted against.
pub fn plan_on(
    cells: &[Cell],
    excluded: Vec<Excluded>,
    catalog: &Catalog,
    overlay: &Overlay,
    cluster: &ClusterDescription,
    opts: &PlanOptions,
) -> Result<Plan, InputError> {
    let cells = cells
        .iter()
        .map(|c| plan_cell_on(c, catalog, overlay, cluster, opts))
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
        outside: Some(talos_in_docker_outside()),
    };
    plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{MatrixSpec, expand};

    fn plan_of(spec: &MatrixSpec) -> Plan {
        let catalog = Catalog::embedded();
        let (cells, excluded) = expand(spec, &catalog).unwrap();
        let opts = PlanOptions {
            values_files: vec![],
            filter: CheckFilter::new(&[], &[]).unwrap(),
            nodes: 2,
            external_target: None,
            outside: Some(talos_in_docker_outside()),
        };
        plan(&cells, excluded, &catalog, &Overlay::embedded(), &opts).unwrap()
    }

    /// The shipped matrices raise no warning; a warning would be a problem the file must explain.
    #[test]
    fn the_default_and_nightly_matrices_plan_without_warnings() {
        let nightly = MatrixSpec::parse(
            "nightly.yaml",
            include_str!("../../../profiles/matrix/nightly.yaml"),
        )
        .unwrap();
        for (name, spec) in [
            ("default", MatrixSpec::embedded_default()),
            ("nightly", nightly),
        ] {
            let p = plan_of(&spec);
            for cell in &p.cells {
                assert!(
                    cell.warnings.is_empty(),
                    "{name} matrix, {}: {:?}",
                    cell.id,
                    cell.warnings
                );
            }
        }
    }

    #[test]
    fn the_spire_profile_plans_on_every_cilium_minor_with_its_namespace() {
        let cilium: Vec<String> = ReleaseTable::embedded()
            .cilium
            .iter()
            .map(|c| c.latest.to_string())
            .collect();
        let spec = MatrixSpec {
            profiles: vec!["service-mesh-spire".into()],
            cilium_versions: cilium,
            talos_versions: vec!["newest".into()],
            kubernetes_versions: vec![],
        };
        let p = plan_of(&spec);
        assert_eq!(p.cells.len(), 3);
        for cell in &p.cells {
            assert!(cell.warnings.is_empty(), "{}: {:?}", cell.id, cell.warnings);
            assert_eq!(cell.namespaces.len(), 1, "{}", cell.id);
            assert_eq!(cell.namespaces[0].name, "cilium-spire");
            assert!(cell.features.mutual_auth_spire);
            assert_eq!(
                values::get(
                    &cell.values,
                    "authentication.mutual.spire.install.server.dataStorage.enabled"
                ),
                Some(&serde_json::json!(false)),
                "no StorageClass in Talos-in-Docker"
            );
        }
    }

    #[test]
    fn a_cell_off_ciliums_tested_kubernetes_is_warned_about() {
        let spec = MatrixSpec {
            profiles: vec!["talos-basic".into()],
            cilium_versions: vec!["1.18.14".into()],
            talos_versions: vec!["v1.14.0".into()],
            kubernetes_versions: vec!["1.35.4".into()],
        };
        let p = plan_of(&spec);
        assert_eq!(p.cells[0].warnings[0].key, "kubernetes");
        assert_eq!(
            p.cells[0].kubernetes_note.as_deref(),
            Some("Talos v1.14.0 defaults to 1.37.0; the matrix names 1.35.4")
        );
    }
}
