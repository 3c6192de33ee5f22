//! The gate's validation: which A→B paths are refused and why, the order of the moves, the
//! Gateway API CRDs across a Cilium move, and B's values linted against B's chart.

use super::*;
use crate::matrix::{AxisFlags, MatrixSpec, expand};
use crate::plan::ValuesFile;
use suites::CheckFilter;

struct Start {
    cell: CellPlan,
    catalog: Catalog,
    overlay: Overlay,
    options: PlanOptions,
}

fn start(
    profile: &str,
    cilium: &str,
    talos: &str,
    kubernetes: Option<&str>,
    values: &str,
) -> Start {
    let catalog = Catalog::embedded();
    let flags = AxisFlags {
        profiles: vec![profile.into()],
        cilium_versions: vec![cilium.into()],
        talos_versions: vec![talos.into()],
        kubernetes_versions: kubernetes.into_iter().map(String::from).collect(),
    };
    let (cells, _) = expand(&MatrixSpec::load(None, flags).unwrap(), &catalog).unwrap();
    let options = PlanOptions {
        values_files: if values.is_empty() {
            vec![]
        } else {
            vec![ValuesFile::parse("user.yaml", values).unwrap()]
        },
        filter: CheckFilter::new(&[], &[]).unwrap(),
        nodes: 2,
        external_target: None,
        outside: Some(crate::plan::talos_in_docker_outside()),
    };
    let overlay = Overlay::embedded();
    let cell = plan(&cells, vec![], &catalog, &overlay, &options)
        .unwrap()
        .cells
        .remove(0);
    Start {
        cell,
        catalog,
        overlay,
        options,
    }
}

fn to(cilium: Option<&str>, talos: Option<&str>, kubernetes: Option<&str>) -> Targets {
    Targets {
        cilium: cilium.map(|v| CiliumVersion::parse(v).unwrap()),
        talos: talos.map(|v| TalosVersion::parse(v).unwrap()),
        kubernetes: kubernetes.map(|v| KubernetesVersion::parse(v).unwrap()),
    }
}

fn run(s: Start, targets: Targets, downgrade: bool) -> Result<UpgradePlan, Vec<String>> {
    plan_upgrade(
        s.cell, &targets, downgrade, &s.catalog, &s.overlay, &s.options,
    )
    .map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
}

#[test]
fn a_cilium_minor_upgrade_applies_newer_crds_first_and_sets_upgrade_compatibility() {
    let s = start("talos-gateway-api", "1.19.8", "v1.13.9", Some("1.35.4"), "");
    let p = run(s, to(Some("1.20.2"), None, None), false).unwrap();
    let Some(Move::Cilium {
        from,
        to: b,
        compatibility,
        crds,
    }) = p.cilium_move()
    else {
        panic!("no Cilium move: {:?}", p.moves);
    };
    assert_eq!(
        (from.to_string(), b.to_string()),
        ("1.19.8".into(), "1.20.2".into())
    );
    assert_eq!(compatibility.to_string(), "1.19");
    let CrdMove::Apply {
        installed,
        to: next,
    } = crds
    else {
        panic!("{crds:?}");
    };
    assert_eq!(
        (installed.version.as_str(), next.version.as_str()),
        ("v1.4.1", "v1.6.1")
    );
    assert_eq!(p.after.values["upgradeCompatibility"], "1.19");
    assert!(p.before.values.get("upgradeCompatibility").is_none());
    assert_eq!(p.after.gateway_api.as_ref().unwrap().version, "v1.6.1");
}

#[test]
fn skipping_a_cilium_minor_is_refused_with_the_next_one_to_go_to() {
    let s = start("talos-basic", "1.18.14", "v1.12.11", Some("1.33.6"), "");
    let errors = run(s, to(Some("1.20.2"), None, None), false).unwrap_err();
    assert!(
        errors[0].starts_with(
            "Cilium 1.18 to 1.20 skips a minor release: only consecutive minors are a tested path; go to 1.19 first; fix: see the release table's source: cilium/cilium"
        ),
        "{errors:?}"
    );
}

#[test]
fn talos_and_kubernetes_downgrades_and_skips_are_refused() {
    let s = start("talos-basic", "1.19.8", "v1.14.0", Some("1.35.4"), "");
    let errors = run(s, to(None, Some("v1.13.9"), None), false).unwrap_err();
    assert!(
        errors[0].contains("Talos cannot go back from 1.14 to 1.13"),
        "{errors:?}"
    );

    let s = start("talos-basic", "1.19.8", "v1.12.11", Some("1.33.6"), "");
    let errors = run(s, to(None, Some("v1.14.0"), Some("1.35.4")), false).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Talos 1.12 to 1.14 skips a minor")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("Kubernetes 1.33 to 1.35 skips a minor")),
        "{errors:?}"
    );
}

#[test]
fn kubernetes_a_must_run_on_talos_b_before_kubernetes_moves() {
    // Talos 1.13 runs Kubernetes 1.31 to 1.36: a 1.12 cluster on 1.30 cannot take it first.
    let s = start("talos-basic", "1.18.14", "v1.12.11", Some("1.30.14"), "");
    let errors = run(s, to(None, Some("v1.13.9"), Some("1.31.14")), false).unwrap_err();
    assert!(
        errors.iter().any(|e| e.starts_with(
            "after the Talos upgrade, Talos v1.13.9 supports Kubernetes 1.31 to 1.36, not 1.30.14 (Kubernetes moves after Talos)"
        )),
        "{errors:?}"
    );
}

#[test]
fn talos_moves_before_kubernetes_and_an_untested_window_is_a_warning() {
    let s = start("talos-basic", "1.19.8", "v1.13.9", Some("1.36.3"), "");
    let p = run(s, to(None, Some("v1.14.0"), Some("1.37.0")), false).unwrap();
    assert_eq!(
        p.moves,
        vec![
            Move::Talos {
                from: TalosVersion::parse("v1.13.9").unwrap(),
                to: TalosVersion::parse("v1.14.0").unwrap(),
            },
            Move::Kubernetes {
                from: KubernetesVersion::parse("1.36.3").unwrap(),
                to: KubernetesVersion::parse("1.37.0").unwrap(),
            },
        ],
        "Talos moves before Kubernetes"
    );
    // Cilium 1.19 is tested on 1.32 to 1.35: the gate says so, it does not refuse.
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("Cilium 1.19.8 runs on Kubernetes 1.37.0")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn nothing_to_upgrade_and_a_downgrade_without_a_cilium_move_are_refused() {
    let s = start("talos-basic", "1.19.8", "v1.13.9", Some("1.35.4"), "");
    let errors = run(s, to(None, None, None), true).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("nothing to upgrade"));
    assert!(errors[1].starts_with("--downgrade goes back to the starting Cilium"));
}

#[test]
fn a_downgrade_that_would_need_older_gateway_api_crds_is_refused_before_anything_runs() {
    let s = start("talos-gateway-api", "1.19.8", "v1.13.9", Some("1.35.4"), "");
    let errors = run(s, to(Some("1.20.2"), None, None), true).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("Cilium 1.19.8 does not work with the installed Gateway API v1.6.1 CRDs"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains(
            "from v1.5.0 the CRD bundle's safe-upgrades admission policy refuses older CRDs"
        ),
        "{errors:?}"
    );
}

#[test]
fn a_downgrade_without_gateway_api_goes_back_to_the_starting_cilium() {
    let s = start("talos-basic", "1.19.8", "v1.13.9", Some("1.35.4"), "");
    let p = run(s, to(Some("1.20.2"), None, None), true).unwrap();
    let (back, m) = p.downgrade.as_ref().unwrap();
    assert_eq!(back.cell.cilium.to_string(), "1.19.8");
    assert_eq!(back.values["upgradeCompatibility"], "1.20");
    assert_eq!(
        m,
        &Move::Cilium {
            from: CiliumVersion::parse("1.20.2").unwrap(),
            to: CiliumVersion::parse("1.19.8").unwrap(),
            compatibility: Minor(1, 20),
            crds: CrdMove::None,
        }
    );
}

#[test]
fn values_are_linted_against_the_chart_upgraded_to() {
    // Refused by the 1.20 chart's validate.yaml, accepted by 1.19's.
    let values = "clustermesh:\n  apiserver:\n    tls:\n      server:\n        cert: abc\n";
    let s = start("talos-basic", "1.19.8", "v1.13.9", Some("1.35.4"), values);
    let errors = run(s, to(Some("1.20.2"), None, None), false).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("cilium-1.20.2"), "{errors:?}");
    assert!(
        errors[0]
            .contains("clustermesh.apiserver.tls.server: not a value of the Cilium 1.20 chart"),
        "{errors:?}"
    );
}

#[test]
fn crds_never_move_below_what_is_installed() {
    use crate::profile::Channel;
    let crds = |v: &str| GatewayApiCrds {
        version: v.into(),
        channel: Channel::Standard,
    };
    let c120 = CiliumVersion::parse("1.20.2").unwrap();
    // Newer needed: applied.
    assert_eq!(
        crd_move(Some(&crds("v1.5.1")), Some(&crds("v1.6.1")), &c120).unwrap(),
        CrdMove::Apply {
            installed: crds("v1.5.1"),
            to: crds("v1.6.1")
        }
    );
    // Older wanted, but the installed ones work with the target: kept.
    assert_eq!(
        crd_move(Some(&crds("v1.6.1")), Some(&crds("v1.5.1")), &c120).unwrap(),
        CrdMove::Keep {
            installed: crds("v1.6.1")
        }
    );
    // A channel change would put experimental CRDs over standard ones.
    let exp = GatewayApiCrds {
        version: "v1.6.1".into(),
        channel: Channel::Experimental,
    };
    assert!(crd_move(Some(&crds("v1.6.1")), Some(&exp), &c120).is_err());
}
