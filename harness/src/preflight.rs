//! Checks made before a command creates anything: the paths it will write, the URLs and hosts
//! it was given, the tools on PATH (and that they run), and what the Docker host's kernel must
//! offer. Each returns every problem it finds with its fix; the commands collect them all into
//! one refusal, so a run with a missing part stops here instead of failing (or hanging)
//! half-way through the first cell.

use crate::errors::InputError;
use crate::plan::Plan;
use std::path::{Path, PathBuf};
use std::time::Duration;
use talos_docker::child::DiesWithHarness;

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
    /// The modules found loaded on the Docker engine's kernel (see [`engine_modules`]), which
    /// the nodes share; when known, they replace this machine's `/sys/module`.
    pub engine_modules: Option<Vec<String>>,
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
            engine_modules: None,
        }
    }

    fn has_module(&self, module: &str) -> bool {
        let loaded = match &self.engine_modules {
            Some(on_engine) => on_engine.iter().any(|m| m == module),
            None => self.sys_module.join(module).exists(),
        };
        loaded
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

impl From<Problem> for InputError {
    fn from(p: Problem) -> Self {
        InputError::problem(p.what, p.fix)
    }
}

/// The kernel modules the plan's profiles need.
pub fn required_modules(plan: &Plan) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in plan.cells.iter().flat_map(|c| &c.host_requirements) {
        if !out.contains(&r.kernel_module) {
            out.push(r.kernel_module);
        }
    }
    out
}

/// Which of the plan's kernel modules the Docker engine's kernel has loaded, asked of the
/// engine itself (from a container of `image` that is never started), so Docker Desktop,
/// Colima and a remote `DOCKER_HOST` get the answer for the kernel the nodes will share.
/// `None` when the plan needs no module.
pub async fn engine_modules(
    plan: &Plan,
    image: &str,
    run_id: &talos_docker::RunId,
    timeout: Duration,
) -> Result<Option<Vec<String>>, InputError> {
    let wanted = required_modules(plan);
    if wanted.is_empty() {
        return Ok(None);
    }
    let engine = talos_docker::docker::Engine::connect(timeout)
        .await
        .map_err(InputError::from)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let labels = talos_docker::labels::object(run_id.as_str(), "kernel-probe", created);
    engine
        .loaded_modules(image, &wanted, labels, timeout)
        .await
        .map(Some)
        .map_err(|e| {
            InputError::problem(
                format!("cannot tell which kernel modules the Docker host has loaded: {e}"),
                "check the engine with `docker info`, and that it may bind-mount /sys/module",
            )
        })
}

/// Bound on `helm version`.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The helm found runs and answers `helm version --short` in time.
pub async fn helm_runs(helm: &Path) -> Result<String, InputError> {
    let broken = |why: String| {
        InputError::problem(
            format!("{} does not work as helm: {why}", helm.display()),
            "install Helm 3 (https://helm.sh/docs/intro/install/) or pass --helm PATH",
        )
    };
    let run = tokio::process::Command::new(helm)
        .args(["version", "--short"])
        .stdin(std::process::Stdio::null())
        .dies_with_harness()
        .output();
    let out = tokio::time::timeout(TOOL_TIMEOUT, run)
        .await
        .map_err(|_| {
            broken(format!(
                "`helm version --short` did not answer within {}s",
                TOOL_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| broken(format!("cannot run it: {e}")))?;
    let said = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output")
            .trim()
            .to_string()
    };
    if !out.status.success() {
        let status = match out.status.code() {
            Some(code) => format!("status {code}"),
            None => "a signal".to_string(),
        };
        return Err(broken(format!(
            "`helm version --short` exited with {status} ({})",
            said(&out.stderr)
        )));
    }
    Ok(said(&out.stdout))
}

/// The closest existing ancestor of `path` (itself included).
fn existing_ancestor(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.ancestors()
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// Whether files can be made in `dir`, found by making (and at once removing) one there: the
/// permission bits alone do not tell (root, read-only mounts, ACLs).
fn can_write_in(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    tempfile::tempfile_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

/// `path` is a file the command may create or replace: not a directory, and its directory
/// (which may not exist yet) can be made and written. Nothing is created.
pub fn output_file(flag: &str, path: &Path) -> Result<(), InputError> {
    let bad = |why: String, fix: &str| {
        InputError::problem(format!("{flag} {}: {why}", path.display()), fix.to_string())
    };
    if path.is_dir() {
        return Err(bad(
            "is a directory".into(),
            &format!(
                "pass a file path, e.g. {flag} {}",
                path.join("junit.xml").display()
            ),
        ));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    output_dir_inner(parent).map_err(|why| {
        // The parent is not the flag's own path: always name it.
        let why = match why.as_str() {
            "is a file, not a directory" => {
                format!("{} is a file, not a directory", parent.display())
            }
            _ => why,
        };
        bad(why, "pass a path in a directory you can write")
    })
}

/// `path` is a directory the command may create and write into. Nothing is created.
pub fn output_dir(flag: &str, path: &Path) -> Result<(), InputError> {
    output_dir_inner(path).map_err(|why| {
        InputError::problem(
            format!("{flag} {}: {why}", path.display()),
            "pass a directory you can write (it is made if missing)",
        )
    })
}

fn output_dir_inner(path: &Path) -> Result<(), String> {
    let at = existing_ancestor(path);
    if !at.is_dir() {
        let own = std::path::absolute(path).is_ok_and(|p| p == at);
        return Err(if own {
            "is a file, not a directory".to_string()
        } else {
            format!("{} is a file, not a directory", at.display())
        });
    }
    can_write_in(&at)
}

/// A DNS name pods can look up and reach over HTTPS (the egress checks do both).
pub fn external_target(host: &str) -> Result<(), InputError> {
    let bad = |why: &str| {
        InputError::problem(
            format!("--external-target '{host}' is not a host name: {why}"),
            "pass a DNS name the pods can resolve and reach over HTTPS, e.g. --external-target one.one.one.one, or --no-external-target",
        )
    };
    if host.contains("://") || host.contains('/') {
        return Err(bad("give the name alone, without a scheme or path"));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(bad("an IP address cannot be looked up in DNS"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err(bad("a DNS name has 1 to 253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(bad(&format!(
                "'{label}' is not a DNS label (letters, digits and inner '-', at most 63)"
            )));
        }
    }
    Ok(())
}

/// An `http(s)://` URL with a host, such as a Helm repository.
pub fn http_url(flag: &str, given: &str) -> Result<(), InputError> {
    let ok = given
        .parse::<http::Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
        .and_then(|u| u.host().map(|h| !h.is_empty()))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(InputError::problem(
            format!("{flag} '{given}' is not an http(s) URL"),
            format!(
                "write it like {flag} {}",
                match flag {
                    "--chart-repo" => "https://helm.cilium.io",
                    _ => "https://mirror.example/path",
                }
            ),
        ))
    }
}

/// What Talos-in-Docker clusters of these specs need from the host, all checked: a talosctl of
/// each Talos minor, a Docker engine that answers, CPUs and memory for `at_once` clusters at a
/// time, and every node image (pulled now, within its bound, if absent). `extra_images`: other
/// images the run starts containers from (the outside client's), made present the same way.
pub async fn docker_host(
    specs: &[talos_docker::ClusterSpec],
    at_once: usize,
    extra_images: &[String],
) -> Vec<InputError> {
    use talos_docker::PreflightError;
    use talos_docker::docker::Engine;
    use talos_docker::talosctl::Talosctl;
    let mut problems: Vec<InputError> = Vec::new();
    let mut minors: Vec<String> = Vec::new();
    for spec in specs {
        let minor = spec.talos_version.minor_tag();
        if minors.contains(&minor) {
            continue;
        }
        minors.push(minor);
        if let Err(e) = Talosctl::locate(
            spec.talosctl.as_deref(),
            &spec.talos_version,
            spec.timeouts.talosctl,
        )
        .await
        {
            problems.push(e.into());
        }
    }
    let Some(first) = specs.first() else {
        return problems;
    };
    let engine = match Engine::connect(first.timeouts.docker).await {
        Ok(engine) => engine,
        Err(e) => {
            problems.push(e.into());
            return problems;
        }
    };
    match engine.host_resources().await {
        Ok(host) => {
            // Every cluster of a run has the same sizes; `at_once` exist at a time.
            let spec = first;
            if host.cpus > 0 && spec.cpus > host.cpus as f64 {
                problems.push(
                    PreflightError::TooManyCpus {
                        requested: spec.cpus,
                        host: host.cpus,
                    }
                    .into(),
                );
            }
            let host_mib = host.mem_total_bytes / (1024 * 1024);
            let total_mib = spec.memory_mib * u64::from(spec.node_count());
            if host_mib > 0 && total_mib > host_mib {
                problems.push(
                    PreflightError::NotEnoughMemory {
                        nodes: spec.node_count(),
                        per_node_mib: spec.memory_mib,
                        total_mib,
                        host_mib,
                    }
                    .into(),
                );
            } else if host_mib > 0 && at_once > 1 && total_mib * at_once as u64 > host_mib {
                problems.push(InputError::problem(
                    format!(
                        "{at_once} clusters at once need {} MiB ({total_mib} MiB each), more than the Docker host's {host_mib} MiB",
                        total_mib * at_once as u64
                    ),
                    format!("pass --jobs {}", (host_mib / total_mib).max(1)),
                ));
            }
        }
        Err(e) => problems.push(InputError::problem(
            format!(
                "the Docker engine does not say how many CPUs and how much memory it has ({e})"
            ),
            "check the engine with `docker info`",
        )),
    }
    let mut images: Vec<String> = Vec::new();
    for spec in specs {
        let image = spec.image();
        if images.contains(&image) {
            continue;
        }
        images.push(image.clone());
        if let Err(e) = engine.ensure_image(&image, &spec.timeouts).await {
            problems.push(e.into());
        }
    }
    for image in extra_images {
        if let Err(e) = engine.ensure_image(image, &first.timeouts).await {
            problems.push(e.into());
        }
    }
    problems
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
            engine_modules: None,
        };
        (dir, host)
    }

    #[test]
    fn the_engine_kernel_decides_when_it_is_known() {
        // This machine has wireguard loaded, the engine's kernel (a Docker Desktop VM) has not.
        let (_d, mut host) = host_with(&["helm", "curl"], &["wireguard"]);
        host.engine_modules = Some(vec![]);
        let p = plan_of(&["vxlan-wireguard-hostfw"]);
        let problems = check(&p, &needs(), &host);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0]
                .what
                .contains("wireguard is not loaded on the Docker host")
        );
        assert!(
            problems[1]
                .what
                .contains("tcp_bbr is not loaded on the Docker host")
        );
        host.engine_modules = Some(vec!["wireguard".into(), "tcp_bbr".into()]);
        assert!(check(&p, &needs(), &host).is_empty());
        assert_eq!(required_modules(&p), ["wireguard", "tcp_bbr"]);
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
        let refused = crate::errors::Refused(problems.into_iter().map(Into::into).collect());
        assert!(
            refused.to_string().starts_with(
                "4 problems, nothing was created; fix them all and run again:\n  - helm not found (helm); fix: install Helm 3"
            ),
            "{refused}"
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
