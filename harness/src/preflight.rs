//! Checks made before a run creates anything: the tools on PATH and what the Docker host's
//! kernel must offer. A run with a missing part stops here with every problem and its fix,
//! instead of failing (or hanging) half-way through the first cell. The Docker engine, the
//! Talos images and talosctl's version are checked by talos-docker's own preflight.

use crate::plan::Plan;
use std::path::{Path, PathBuf};

/// One missing part and how to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

/// Where to look: injectable so tests need not touch the real PATH or /sys.
pub struct Host {
    pub path: Vec<PathBuf>,
    pub sys_module: PathBuf,
    /// Lists the congestion controls the kernel has ready; a built-in BBR shows only here.
    pub congestion_controls: PathBuf,
}

impl Host {
    pub fn current() -> Self {
        Host {
            path: std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            sys_module: PathBuf::from("/sys/module"),
            congestion_controls: PathBuf::from(
                "/proc/sys/net/ipv4/tcp_available_congestion_control",
            ),
        }
    }

    fn has_module(&self, module: &str) -> bool {
        self.sys_module.join(module).exists()
            || module == "tcp_bbr"
                && std::fs::read_to_string(&self.congestion_controls)
                    .is_ok_and(|c| c.split_whitespace().any(|cc| cc == "bbr"))
    }

    /// An executable named `name`, or the given path if it names a file.
    pub fn find(&self, name: &Path) -> Option<PathBuf> {
        if name.components().count() > 1 {
            return name.is_file().then(|| name.to_path_buf());
        }
        self.path.iter().map(|d| d.join(name)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    }
}

/// What the run needs from the host, given its plan and options.
pub struct Needs<'a> {
    pub helm: &'a Path,
    /// Without a local mirror, Gateway API bundles are fetched with curl.
    pub gateway_api_dir: Option<&'a Path>,
    /// A local chart (directory or .tgz) instead of a repository; `oci://` references are not
    /// checked here.
    pub chart: Option<&'a str>,
}

pub fn check(plan: &Plan, needs: &Needs<'_>, host: &Host) -> Vec<Problem> {
    let mut problems = Vec::new();
    if host.find(needs.helm).is_none() {
        problems.push(Problem {
            what: format!("helm not found ({})", needs.helm.display()),
            fix: "install Helm 3 (https://helm.sh/docs/intro/install/) or pass --helm PATH".into(),
        });
    }
    let wants_crds = plan.cells.iter().any(|c| c.gateway_api.is_some());
    if wants_crds && needs.gateway_api_dir.is_none() && host.find(Path::new("curl")).is_none() {
        problems.push(Problem {
            what: "curl not found, and Gateway API CRDs must be fetched".into(),
            fix: "install curl, or pass --gateway-api-dir DIR holding <version>/<channel>-install.yaml".into(),
        });
    }
    if let Some(dir) = needs.gateway_api_dir {
        let mut missing: Vec<String> = Vec::new();
        for crds in plan.cells.iter().filter_map(|c| c.gateway_api.as_ref()) {
            let file = dir
                .join(&crds.version)
                .join(format!("{}-install.yaml", crds.channel.as_str()));
            let shown = file.display().to_string();
            if !file.is_file() && !missing.contains(&shown) {
                missing.push(shown);
            }
        }
        if !missing.is_empty() {
            problems.push(Problem {
                what: format!("Gateway API bundles missing from --gateway-api-dir: {}", missing.join(", ")),
                fix: "download each release's <channel>-install.yaml from github.com/kubernetes-sigs/gateway-api/releases into DIR/<version>/".into(),
            });
        }
    }
    if let Some(chart) = needs.chart.filter(|c| !c.starts_with("oci://"))
        && !Path::new(chart).exists()
    {
        problems.push(Problem {
            what: format!("the Cilium chart {chart} does not exist"),
            fix: "pass a chart directory or .tgz (`helm pull cilium/cilium --version V`), an oci:// reference, or --chart-repo URL".into(),
        });
    }
    // A local chart archive must be the published chart of every Cilium version the plan
    // installs from it (digests from the cilium/charts index, harness/data/cilium-charts.tsv).
    if let Some(archive) = needs
        .chart
        .map(Path::new)
        .filter(|c| c.is_file() && c.extension().is_some_and(|x| x == "tgz"))
    {
        let mut versions: Vec<&crate::version::CiliumVersion> = Vec::new();
        for cell in &plan.cells {
            if !versions.contains(&&cell.cell.cilium) {
                versions.push(&cell.cell.cilium);
            }
        }
        for version in versions {
            if let Err(why) = crate::releases::check_chart(version, archive) {
                problems.push(Problem {
                    what: why,
                    fix: format!(
                        "pass the published chart (`helm pull cilium/cilium --version {version}`), or --chart-repo URL"
                    ),
                });
            }
        }
    }
    let mut modules: Vec<(&str, Vec<String>)> = Vec::new();
    for cell in &plan.cells {
        for r in &cell.host_requirements {
            match modules.iter_mut().find(|(m, _)| *m == r.kernel_module) {
                Some((_, profiles)) if !profiles.contains(&cell.profile.name) => {
                    profiles.push(cell.profile.name.clone())
                }
                Some(_) => {}
                None => modules.push((r.kernel_module, vec![cell.profile.name.clone()])),
            }
        }
    }
    for (module, profiles) in modules {
        if !host.has_module(module) {
            problems.push(Problem {
                what: format!(
                    "kernel module {module} is not loaded on the Docker host (needed by {}); Talos nodes in containers share the host kernel and cannot load it",
                    profiles.join(", ")
                ),
                fix: format!("run `sudo modprobe {module}` on the Docker host, or leave those profiles out (--profile)"),
            });
        }
    }
    problems
}

/// All problems as one message.
pub fn message(problems: &[Problem]) -> String {
    let mut out = format!(
        "the run cannot start: {} problem(s) on this host:",
        problems.len()
    );
    for p in problems {
        out.push_str(&format!("\n  - {}; fix: {}", p.what, p.fix));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(profiles: &[&str]) -> Plan {
        crate::plan::for_tests(profiles, &[])
    }

    fn host_with(tools: &[&str], modules: &[&str]) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&sys).unwrap();
        for t in tools {
            let p = bin.join(t);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        for m in modules {
            std::fs::create_dir_all(sys.join(m)).unwrap();
        }
        let host = Host {
            path: vec![bin],
            sys_module: sys,
            congestion_controls: dir.path().join("congestion"),
        };
        (dir, host)
    }

    fn needs() -> Needs<'static> {
        Needs {
            helm: Path::new("helm"),
            gateway_api_dir: None,
            chart: None,
        }
    }

    #[test]
    fn a_complete_host_has_no_problems() {
        let (_d, host) = host_with(&["helm", "curl"], &["wireguard", "tcp_bbr"]);
        assert!(
            check(
                &plan_of(&["vxlan-wireguard-hostfw", "talos-gateway-api"]),
                &needs(),
                &host
            )
            .is_empty()
        );
    }

    #[test]
    fn every_missing_part_is_named_with_its_fix() {
        let (_d, host) = host_with(&[], &[]);
        let problems = check(
            &plan_of(&[
                "vxlan-wireguard-hostfw",
                "service-mesh-wireguard",
                "talos-gateway-api",
            ]),
            &needs(),
            &host,
        );
        let whats: Vec<&str> = problems.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats.len(), 4, "{whats:?}");
        assert!(whats[0].starts_with("helm not found"));
        assert!(whats[1].starts_with("curl not found"));
        assert!(whats[2].contains("wireguard is not loaded"));
        assert!(whats[2].contains("vxlan-wireguard-hostfw, service-mesh-wireguard"));
        assert!(whats[3].contains("tcp_bbr"));
        assert!(
            message(&problems).starts_with(
                "the run cannot start: 4 problem(s) on this host:\n  - helm not found"
            )
        );
    }

    #[test]
    fn a_gateway_api_mirror_replaces_curl_and_non_executables_do_not_count() {
        let (d, host) = host_with(&["helm"], &[]);
        std::fs::write(host.path[0].join("curl"), "not executable").unwrap();
        let p = plan_of(&["talos-gateway-api"]);
        assert_eq!(check(&p, &needs(), &host).len(), 1);
        let dir = d.path().join("mirror");
        std::fs::create_dir_all(dir.join("v1.3.0")).unwrap();
        std::fs::write(dir.join("v1.3.0/standard-install.yaml"), "").unwrap();
        let mirror = Needs {
            gateway_api_dir: Some(&dir),
            ..needs()
        };
        assert!(check(&p, &mirror, &host).is_empty());
    }

    #[test]
    fn a_mirror_must_hold_every_bundle_and_a_local_chart_must_exist() {
        let (dir, host) = host_with(&["helm"], &[]);
        let mirror = dir.path().join("mirror");
        std::fs::create_dir_all(mirror.join("v1.3.0")).unwrap();
        let p = plan_of(&["talos-gateway-api", "native-routing-gateway"]);
        let given = Needs {
            gateway_api_dir: Some(&mirror),
            chart: Some("/nowhere/cilium.tgz"),
            ..needs()
        };
        let problems = check(&p, &given, &host);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].what.contains("v1.3.0/standard-install.yaml")
                && problems[0]
                    .what
                    .contains("v1.4.0/experimental-install.yaml")
        );
        assert!(
            problems[1]
                .what
                .contains("/nowhere/cilium.tgz does not exist")
        );
        std::fs::write(mirror.join("v1.3.0/standard-install.yaml"), "").unwrap();
        std::fs::create_dir_all(mirror.join("v1.4.0")).unwrap();
        std::fs::write(mirror.join("v1.4.0/experimental-install.yaml"), "").unwrap();
        let given = Needs {
            gateway_api_dir: Some(&mirror),
            chart: Some("oci://quay.io/cilium/charts/cilium"),
            ..needs()
        };
        assert!(check(&p, &given, &host).is_empty());
    }

    #[test]
    fn a_local_chart_must_be_the_published_one() {
        let (dir, host) = host_with(&["helm", "curl"], &[]);
        let p = plan_of(&["talos-basic"]);
        let fake = dir.path().join("cilium-1.18.4.tgz");
        std::fs::write(&fake, b"a chart someone built").unwrap();
        let given = Needs {
            chart: fake.to_str(),
            ..needs()
        };
        let problems = check(&p, &given, &host);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .what
                .contains("is not the published cilium 1.18.4"),
            "{}",
            problems[0].what
        );
        let published = upstream::testdata::path("charts/cilium-1.18.4.tgz");
        let given = Needs {
            chart: published.to_str(),
            ..needs()
        };
        assert!(check(&p, &given, &host).is_empty());
    }

    #[test]
    fn a_built_in_bbr_counts() {
        let (dir, host) = host_with(&["helm", "curl"], &["wireguard"]);
        let p = plan_of(&["vxlan-wireguard-hostfw"]);
        assert_eq!(check(&p, &needs(), &host).len(), 1);
        std::fs::write(dir.path().join("congestion"), "reno cubic bbr\n").unwrap();
        assert!(check(&p, &needs(), &host).is_empty());
    }
}
