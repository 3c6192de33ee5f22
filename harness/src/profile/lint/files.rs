//! `harness lint FILE...`: Helm values files and Cilium manifests, one finding a line
//! (`file:line:column: severity: key: problem; fix: ...`) or JSON. Each document of a file is
//! linted by its kind; kinds the lint does not know are skipped with a note. The cluster is the
//! one the harness builds unless facts are given as flags, and the output says which facts the
//! lint went by and which it assumed.

use super::manifests::{self, KINDS};
use super::source::{Document, Position, documents};
use super::{Finding, Severity, values_with_notes};
use crate::cluster::{ClusterDescription, GivenFacts, NodeLink, Origin};
use crate::errors::InputError;
use crate::profile::overlay::Overlay;
use crate::version::CiliumVersion;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use talos_docker::Ipv4Net;

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LintOutput {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LinkArg {
    /// Every node on one L2 segment (a bridge, a switch).
    SharedL2,
    /// Nodes behind routers.
    Routed,
}

/// Facts about a cluster the harness did not build. Without any, the lint checks against the
/// Talos-in-Docker cluster the harness builds.
#[derive(Args, Debug, Default)]
pub struct ClusterFlags {
    /// The cluster's pod CIDR (Talos: cluster.network.podSubnets).
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<Ipv4Net>,
    /// The cluster's Service CIDR (Talos: cluster.network.serviceSubnets).
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<Ipv4Net>,
    /// Where Cilium must reach the API server (Talos: KubePrism, localhost).
    #[arg(long, value_name = "HOST")]
    pub k8s_service_host: Option<String>,
    /// The port for --k8s-service-host (Talos: KubePrism, 7445).
    #[arg(long, value_name = "PORT")]
    pub k8s_service_port: Option<u16>,
    /// The API server's own endpoint (the cluster endpoint), HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub api_server: Option<(String, u16)>,
    /// The range node addresses come from.
    #[arg(long, value_name = "CIDR")]
    pub node_cidr: Option<Ipv4Net>,
    /// How nodes reach each other.
    #[arg(long, value_enum, value_name = "LINK")]
    pub node_link: Option<LinkArg>,
    /// The MTU of the nodes' network.
    #[arg(long, value_name = "MTU")]
    pub node_mtu: Option<u32>,
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' has no port; write it like 10.0.0.10:6443"))?;
    let port = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port; write it like 10.0.0.10:6443"))?;
    if host.is_empty() {
        return Err("the host is empty; write it like 10.0.0.10:6443".into());
    }
    Ok((host.to_string(), port))
}

impl ClusterFlags {
    pub fn description(&self, overlay: &Overlay) -> ClusterDescription {
        let facts = GivenFacts {
            pod_cidr: self.pod_cidr,
            service_cidr: self.service_cidr,
            k8s_service_host: self.k8s_service_host.clone(),
            k8s_service_port: self.k8s_service_port,
            api_server: self.api_server.clone(),
            node_cidr: self.node_cidr,
            node_link: self.node_link.map(|l| match l {
                LinkArg::SharedL2 => NodeLink::SharedL2,
                LinkArg::Routed => NodeLink::Routed,
            }),
            node_mtu: self.node_mtu,
        };
        if facts.is_empty() {
            ClusterDescription::talos_in_docker(overlay)
        } else {
            ClusterDescription::given(&facts)
        }
    }
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// The Cilium version to lint for [default: the newest in the release table].
    #[arg(long, default_value_t = crate::releases::ReleaseTable::embedded().newest_cilium().latest.to_string())]
    pub cilium_version: String,
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// `text`: one finding a line (file:line:column: severity: key: problem; fix); `json`: the
    /// findings, notes and cluster facts for machines.
    #[arg(long, value_enum, default_value_t = LintOutput::Text)]
    pub output: LintOutput,
    /// Helm values files, or manifests (CiliumLoadBalancerIPPool, CiliumL2AnnouncementPolicy,
    /// Service); a file may hold several documents.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// A finding where it was found.
#[derive(Clone, Debug, Serialize)]
pub struct Located {
    pub file: String,
    pub line: u64,
    pub column: u64,
    #[serde(flatten)]
    pub finding: Finding,
}

#[derive(Clone, Debug, Serialize)]
pub struct Note {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub note: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FactLine {
    pub fact: &'static str,
    pub value: String,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cilium_version: String,
    pub cluster: String,
    pub facts: Vec<FactLine>,
    pub findings: Vec<Located>,
    pub notes: Vec<Note>,
    pub errors: usize,
    pub warnings: usize,
}

fn doc_kind(doc: &Value) -> Option<&str> {
    doc.get("kind").and_then(Value::as_str)
}

/// Lint one parsed file.
pub fn lint_documents(
    file: &str,
    docs: &[Document],
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
    findings: &mut Vec<Located>,
    notes: &mut Vec<Note>,
) -> Result<(), InputError> {
    for doc in docs {
        let start = doc.position("").map(|p| p.line);
        if !doc.value.is_object() {
            return Err(InputError::InvalidFile {
                file: file.to_string(),
                message: format!(
                    "a document{} is neither Helm values nor a manifest (not a map); pass values or manifests",
                    start.map_or(String::new(), |l| format!(" at line {l}"))
                ),
            });
        }
        let found = match doc_kind(&doc.value) {
            Some("CiliumLoadBalancerIPPool") => manifests::lb_pool(&doc.value, cilium, cluster),
            Some("CiliumL2AnnouncementPolicy") => manifests::l2_policy(&doc.value, cilium, cluster),
            Some("Service") => manifests::service_annotations(&doc.value),
            Some(other) => {
                let known: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
                notes.push(Note {
                    file: file.to_string(),
                    line: start,
                    note: format!(
                        "skipped a {other}: the lint checks Helm values and {}",
                        known.join(", ")
                    ),
                });
                continue;
            }
            None => {
                let (f, n) = values_with_notes(&doc.value, cilium, cluster);
                notes.extend(n.into_iter().map(|note| Note {
                    file: file.to_string(),
                    line: start,
                    note,
                }));
                f
            }
        };
        findings.extend(found.into_iter().map(|f| {
            let at = doc
                .position(&f.key)
                .unwrap_or(Position { line: 1, column: 1 });
            Located {
                file: file.to_string(),
                line: at.line,
                column: at.column,
                finding: f,
            }
        }));
    }
    Ok(())
}

/// Everything the files say, before anything is printed: bad input fails here.
pub fn report(args: &LintArgs) -> Result<Report, InputError> {
    let cilium = CiliumVersion::parse(&args.cilium_version)?;
    // Only a Cilium the release table knows (its error names the nearest known).
    cilium.release()?;
    let cluster = args.cluster.description(&Overlay::embedded());
    let mut parsed = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = crate::yaml::read(path)?;
        let docs = documents(&text).map_err(|e| InputError::yaml(&name, &e))?;
        parsed.push((name, docs));
    }
    let (mut findings, mut notes) = (Vec::new(), Vec::new());
    for (name, docs) in &parsed {
        lint_documents(name, docs, &cilium, &cluster, &mut findings, &mut notes)?;
    }
    Ok(finish(&cilium, &cluster, findings, notes))
}

/// Findings in file order, with the facts the lint went by.
pub fn finish(
    cilium: &CiliumVersion,
    cluster: &ClusterDescription,
    mut findings: Vec<Located>,
    notes: Vec<Note>,
) -> Report {
    // Files in the order given, findings in the order of their lines.
    let mut order: Vec<String> = Vec::new();
    for f in &findings {
        if !order.contains(&f.file) {
            order.push(f.file.clone());
        }
    }
    let rank = |file: &str| order.iter().position(|f| f == file);
    findings.sort_by(|a, b| {
        (rank(&a.file), a.line, a.column, a.finding.severity).cmp(&(
            rank(&b.file),
            b.line,
            b.column,
            b.finding.severity,
        ))
    });
    let errors = findings
        .iter()
        .filter(|f| f.finding.severity == Severity::Error)
        .count();
    Report {
        cilium_version: cilium.to_string(),
        cluster: cluster.name.clone(),
        facts: cluster
            .facts()
            .into_iter()
            .map(|(fact, value, origin)| FactLine {
                fact,
                value,
                origin: origin.clone(),
            })
            .collect(),
        warnings: findings.len() - errors,
        errors,
        findings,
        notes,
    }
}

/// The report as a person reads it: one line per finding, then what it went by.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    for l in &r.findings {
        let f = &l.finding;
        let tag = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out += &format!(
            "{}:{}:{}: {tag}: {}: {}; fix: {}\n",
            l.file, l.line, l.column, f.key, f.problem, f.fix
        );
    }
    for n in &r.notes {
        match n.line {
            Some(line) => out += &format!("{}:{line}: note: {}\n", n.file, n.note),
            None => out += &format!("{}: note: {}\n", n.file, n.note),
        }
    }
    let went_by: Vec<String> = r
        .facts
        .iter()
        .filter(|f| !matches!(f.origin, Origin::Assumed(_)))
        .map(|f| format!("{} {}", f.fact, f.value))
        .collect();
    out += &format!(
        "note: linted for Cilium {} on {}: {}\n",
        r.cilium_version,
        r.cluster,
        if went_by.is_empty() {
            "no facts given".to_string()
        } else {
            went_by.join("; ")
        }
    );
    for f in r.facts.iter() {
        if let Origin::Assumed(why) = &f.origin {
            out += &format!("note: assumed {} {} ({why})\n", f.fact, f.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(files: Vec<PathBuf>) -> LintArgs {
        LintArgs {
            cilium_version: "1.19.6".into(),
            cluster: ClusterFlags::default(),
            output: LintOutput::Text,
            files,
        }
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    // A pool and an L2 policy in one file, as Cilium's LB IPAM and L2 announcement guides lay
    // them out (docs.cilium.io network/lb-ipam, network/l2-announcements): a LAN block and the
    // guides' interface pattern.
    const POOL_AND_POLICY: &str = "apiVersion: cilium.io/v2\nkind: CiliumLoadBalancerIPPool\nmetadata:\n  name: lan\nspec:\n  blocks:\n    - cidr: 192.168.1.240/28\n---\napiVersion: cilium.io/v2alpha1\nkind: CiliumL2AnnouncementPolicy\nmetadata:\n  name: docker\nspec:\n  loadBalancerIPs: true\n  interfaces:\n    - ^eth[0-9]+\n";

    #[test]
    fn a_file_with_a_pool_and_an_l2_policy_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "lb.yaml", POOL_AND_POLICY);
        // On a homelab on that LAN, described by flags: nothing to say.
        let mut a = args(vec![file.clone()]);
        a.cluster.node_cidr = Some("192.168.1.0/24".parse().unwrap());
        a.cluster.node_link = Some(LinkArg::SharedL2);
        let r = report(&a).unwrap();
        assert!(r.findings.is_empty(), "{}", render_text(&r));
        // On the harness's own cluster the LAN block cannot answer from the docker host: a
        // warning, and still no error.
        let r = report(&args(vec![file])).unwrap();
        assert_eq!((r.errors, r.warnings), (0, 1), "{}", render_text(&r));
        assert_eq!(r.findings[0].line, 7);
    }

    #[test]
    fn unknown_kinds_are_skipped_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{POOL_AND_POLICY}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
        );
        let mut a = args(vec![write(dir.path(), "all.yaml", &text)]);
        a.cluster.pod_cidr = Some("10.244.0.0/16".parse().unwrap());
        let r = report(&a).unwrap();
        assert_eq!(r.errors, 0, "{}", render_text(&r));
        assert_eq!(r.notes.len(), 1);
        assert_eq!(r.notes[0].line, Some(18));
        assert!(r.notes[0].note.starts_with("skipped a ConfigMap"));
    }

    #[test]
    fn findings_point_at_their_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "values.yaml",
            "ipam:\n  mode: kubernetes\nkubeProxyReplacment: true\nk8sServiceHost: 127.0.0.1\nk8sServicePort: 6443\n",
        );
        let r = report(&args(vec![f])).unwrap();
        let text = render_text(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with(&format!(
                "{}:3:1: error: kubeProxyReplacment: ",
                dir.path().join("values.yaml").display()
            )),
            "{text}"
        );
        assert!(lines[1].contains(":5:1: error: k8sServicePort: "), "{text}");
        assert!(text.contains("note: linted for Cilium 1.19.6 on the Talos-in-Docker cluster the harness builds: API access localhost:7445 (KubePrism); "), "{text}");
    }

    /// What a person reads for the reports, on the harness's cluster and on a cluster
    /// described by flags.
    #[test]
    fn lint_output_reads_as_one_line_per_finding() {
        // A values file migrated from k3s (the first and fourth reports), and the
        // pool + policy layout with the seed's v2alpha1 pool.
        let values = "ipam:\n  mode: kubernetes\nkubeProxyReplacment: true\nk8sServiceHost: 127.0.0.1\nk8sServicePort: 6443\nrouting: native\nhubble:\n  relay:\n    enabled: \"yes please\"\n";
        let manifests = POOL_AND_POLICY.replace("cilium.io/v2\n", "cilium.io/v2alpha1\n")
            + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
        let mut text = String::new();
        for (version, flags) in [
            ("1.19.6", ClusterFlags::default()),
            (
                "1.20.0",
                ClusterFlags {
                    pod_cidr: Some("10.42.0.0/16".parse().unwrap()),
                    node_link: Some(LinkArg::SharedL2),
                    ..Default::default()
                },
            ),
        ] {
            let cilium = CiliumVersion::parse(version).unwrap();
            let cluster = flags.description(&Overlay::embedded());
            let (mut findings, mut notes) = (Vec::new(), Vec::new());
            for (name, body) in [("values.yaml", values), ("lb.yaml", manifests.as_str())] {
                let docs = documents(body).unwrap();
                lint_documents(name, &docs, &cilium, &cluster, &mut findings, &mut notes).unwrap();
            }
            let r = finish(&cilium, &cluster, findings, notes);
            text += &format!(
                "$ harness lint --cilium-version {version} ...\n{}\n",
                render_text(&r)
            );
        }
        insta::assert_snapshot!(text);
    }
}
