//! `fake-talosctl`: talosctl for tests. It reads its arguments against the grammar table of the
//! talosctl version it plays (`talos-docker/grammar/`, generated from talosctl's own command
//! definitions) the way talosctl's cobra and pflag do, and refuses what that talosctl refuses,
//! with its message and exit status 1. What it accepts it carries out as the real command would
//! on the files: `gen secrets` writes a secrets bundle, `gen config` the machine configs and a
//! talosconfig, `config endpoint|node` edit the talosconfig, `kubeconfig` writes a kubeconfig.
//! Nothing it writes holds a real key. Where the real command would talk to a node
//! (`bootstrap`, `kubeconfig`, `version` without `--client`) a node is simulated, or, with
//! `FAKE_TALOSCTL_NODES=unreachable`, the endpoint is dialled and the failure reported as a real
//! talosctl reports a node that does not answer.
//!
//! Settings (environment):
//!   FAKE_TALOSCTL_VERSION    the talosctl it plays (default v1.11.5); picks the grammar table
//!   FAKE_TALOSCTL_LOG        file that gets one JSON line per call: argv, command, refusal
//!   FAKE_TALOSCTL_NODES      `simulated` (default) or `unreachable`
//!   FAKE_TALOSCTL_FAIL_AT    step that fails for good (gen-secrets, gen-config,
//!                            config-endpoint, config-node, bootstrap, kubeconfig)
//!   FAKE_TALOSCTL_SLEEP_AT   step that hangs for 300 s (a signal ends it)
//!   FAKE_TALOSCTL_TRANSIENT  bootstrap fails like a booting node this many times first

#[path = "talosctl_grammar.rs"]
mod grammar;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grammar::{FlagType, Grammar, Parsed, Refusal};
use serde::{Deserialize, Serialize};

const DEFAULT_VERSION: &str = "v1.11.5";
/// Where apid listens; talosctl dials it when an endpoint names no port.
const APID_PORT: u16 = 50000;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let version = setting("VERSION").unwrap_or_else(|| DEFAULT_VERSION.to_string());
    let Some(grammar) = grammar::for_version(&version) else {
        log_call(&argv, None, Some("no grammar table"));
        let have: Vec<&str> = grammar::TABLES.iter().map(|(m, _)| *m).collect();
        eprintln!(
            "fake talosctl: there is no grammar table for talosctl {version} (tables: {})",
            have.join(", ")
        );
        std::process::exit(1);
    };
    let parsed = match grammar.parse(&argv) {
        Ok(p) => p,
        Err(Refusal::Help { command }) => {
            log_call(&argv, Some(&command), None);
            print!("{}", grammar.usage(&command));
            std::process::exit(0);
        }
        Err(Refusal::Usage { message, command }) => {
            log_call(&argv, Some(&command), Some(&message));
            fail(&grammar, &command, &message);
        }
        Err(r @ Refusal::NotModelled { .. }) => {
            log_call(&argv, None, Some(&r.to_string()));
            eprintln!("fake talosctl: {r}");
            std::process::exit(1);
        }
    };
    log_call(&argv, Some(&parsed.command), None);
    let run = Run {
        grammar: &grammar,
        version: &version,
        parsed: &parsed,
    };
    let step = parsed.command.replace(' ', "-");
    if setting("SLEEP_AT").as_deref() == Some(step.as_str()) {
        std::thread::sleep(Duration::from_secs(300));
    }
    if setting("FAIL_AT").as_deref() == Some(step.as_str()) {
        run.fail(&format!(
            "rpc error: code = PermissionDenied desc = fake talosctl refuses {step}"
        ));
    }
    match parsed.command.as_str() {
        "version" => run.version(),
        "gen secrets" => run.gen_secrets(),
        "gen config" => run.gen_config(),
        "config endpoint" => run.edit_context(|c, args| c.endpoints = args),
        "config node" => run.edit_context(|c, args| c.nodes = args),
        "bootstrap" => run.bootstrap(),
        "kubeconfig" => run.kubeconfig(),
        "upgrade-k8s" => run.upgrade_k8s(),
        other => run.fail(&format!(
            "fake talosctl: `{other}` is accepted but not simulated"
        )),
    }
}

fn setting(name: &str) -> Option<String> {
    std::env::var(format!("FAKE_TALOSCTL_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

fn log_call(argv: &[String], command: Option<&str>, refused: Option<&str>) {
    let Some(path) = setting("LOG") else { return };
    // Command paths without the program name, as `Parsed::command` has them.
    let command = command.map(|c| c.strip_prefix("talosctl").unwrap_or(c).trim_start());
    let line = serde_json::json!({ "argv": argv, "command": command, "refused": refused });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("fake talosctl: cannot open its log {path}: {e}"));
    // One write per line: runs of concurrent cells append to the same log, and `writeln!` would
    // write the JSON and its newline separately, letting another process's line land between them.
    file.write_all(format!("{line}\n").as_bytes())
        .expect("fake talosctl: write its log");
}

/// talosctl's `Execute`: the error, then for argument, flag and command errors a blank line and
/// the usage; exit status 1.
fn fail(grammar: &Grammar, command: &str, message: &str) -> ! {
    eprintln!("{message}");
    if ["arg(s)", "flag", "command"]
        .iter()
        .any(|w| message.contains(w))
    {
        eprintln!();
        eprintln!("{}", grammar.usage(command));
    }
    std::process::exit(1);
}

/// talosconfig as talosctl reads and writes it (`pkg/machinery/client/config/config.go`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct TalosConfig {
    #[serde(default)]
    context: String,
    #[serde(default)]
    contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Context {
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    ca: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    crt: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    key: String,
}

struct Run<'a> {
    grammar: &'a Grammar,
    version: &'a str,
    parsed: &'a Parsed,
}

impl Run<'_> {
    fn fail(&self, message: &str) -> ! {
        fail(
            self.grammar,
            &format!("talosctl {}", self.parsed.command),
            message,
        )
    }

    fn minor(&self) -> (u64, u64) {
        let m = grammar::minor_of(self.version).unwrap_or_default();
        let mut parts = m.trim_start_matches('v').split('.');
        let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (next(), next())
    }

    fn version(&self) {
        if !self.parsed.bool("json", false) {
            println!("Client:");
            if self.parsed.bool("short", false) {
                println!("Talos {}", self.version);
            } else {
                print!("{}", self.long_version());
            }
            if self.parsed.bool("client", false) {
                return;
            }
            println!("Server:");
        }
        let (node, endpoint) = self.client("version");
        self.reach_node(&endpoint, "error getting version: ");
        println!("\tNODE:        {node}");
        print!("{}", self.long_version());
        println!("\tEnabled:     RBAC");
    }

    /// `pkg/machinery/version/version.go`'s long template.
    fn long_version(&self) -> String {
        format!(
            "\tTag:         {}\n\tSHA:         fake\n\tBuilt:       \n\tGo version:  go1.24.0\n\tOS/Arch:     linux/amd64\n",
            self.version
        )
    }

    /// `gen secrets` (`cmd/talosctl/cmd/mgmt/gen/secrets.go`).
    fn gen_secrets(&self) {
        if self.parsed.is_set("from-kubernetes-pki")
            || self.parsed.is_set("from-controlplane-config")
        {
            self.fail("fake talosctl: secrets from existing PKI or configs are not simulated");
        }
        let out = self.parsed.value("output-file").unwrap_or("secrets.yaml");
        let bundle = fake_secrets_bundle();
        // "-" means stdout from v1.12; before, it was a file named "-".
        if out == "-" && self.minor() >= (1, 12) {
            print!("{bundle}");
            return;
        }
        self.refuse_existing(Path::new(out));
        write_file(Path::new(out), bundle.as_bytes(), 0o600)
            .unwrap_or_else(|e| self.fail(&e.to_string()));
    }

    /// `validateFileExists` of `cmd/talosctl/cmd/mgmt/gen/gen.go`.
    fn refuse_existing(&self, path: &Path) {
        if !self.parsed.bool("force", false) && path.exists() {
            self.fail(&format!(
                "file \"{}\" already exists, use --force to overwrite",
                path.display()
            ));
        }
    }

    /// `gen config` (`cmd/talosctl/cmd/mgmt/gen/config.go`).
    fn gen_config(&self) {
        let p = self.parsed;
        let (name, endpoint) = (&p.args[0], &p.args[1]);
        if let Err(e) = check_cluster_endpoint(endpoint) {
            self.fail(&e);
        }
        let version = p.value("version").unwrap_or("v1alpha1");
        if version != "v1alpha1" {
            self.fail(&format!("unknown config version: \"{version}\""));
        }
        let types = if p.is_set("output-types") {
            p.values("output-types", FlagType::StringSlice)
        } else {
            vec!["controlplane".into(), "worker".into(), "talosconfig".into()]
        };
        if types.is_empty() {
            self.fail("at least one output type must be specified");
        }
        let output = p.value("output").unwrap_or("");
        let output_dir = p.value("output-dir").unwrap_or("");
        if types.len() > 1 && output == "-" {
            self.fail("can't use multiple output types with stdout");
        }
        if !output_dir.is_empty() && !output.is_empty() {
            self.fail("can't use both output-dir and output");
        }
        if let Some(bad) = types
            .iter()
            .find(|t| !["controlplane", "worker", "talosconfig"].contains(&t.as_str()))
        {
            self.fail(&format!(
                "1 error occurred:\n\t* invalid output type: \"{bad}\"\n\n"
            ));
        }
        let mut patches = Vec::new();
        for flag in [
            "config-patch",
            "config-patch-control-plane",
            "config-patch-worker",
        ] {
            for patch in p.values(flag, FlagType::StringArray) {
                let text = match patch.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file).unwrap_or_else(|e| {
                        self.fail(&format!(
                            "error parsing config JSON patch: open {file}: {}",
                            io_reason(&e)
                        ))
                    }),
                    None => patch.clone(),
                };
                if serde_saphyr::from_str::<serde_json::Value>(&text).is_err() {
                    self.fail(&format!(
                        "error parsing config JSON patch: {patch} is not YAML"
                    ));
                }
                patches.push(format!("{flag} {patch}"));
            }
        }
        let token = match p.value("with-secrets") {
            Some(file) => load_secrets_bundle(file).unwrap_or_else(|e| self.fail(&e)),
            None => "fake-generated-inline".to_string(),
        };

        // `outputPaths`: a directory unless one type is asked for without --output-dir.
        let dir_mode = !output_dir.is_empty() || types.len() > 1;
        let base = if !output_dir.is_empty() {
            output_dir.to_string()
        } else {
            output.to_string()
        };
        let path_for = |file: &str| -> PathBuf {
            if base.is_empty() {
                std::env::current_dir().unwrap().join(file)
            } else if dir_mode {
                Path::new(&base).join(file)
            } else {
                PathBuf::from(&base)
            }
        };
        let sans = p.values("additional-sans", FlagType::StringSlice).join(",");
        for t in &types {
            let (file, text) = match t.as_str() {
                "talosconfig" => (
                    "talosconfig",
                    format!(
                        "context: {name}\ncontexts:\n  {name}:\n    endpoints: []\n    ca: RkFLRS1DQQ==\n    crt: RkFLRS1DUlQ=\n    key: RkFLRS1LRVk=\n"
                    ),
                ),
                kind => (
                    if kind == "controlplane" {
                        "controlplane.yaml"
                    } else {
                        "worker.yaml"
                    },
                    machine_config(kind, name, endpoint, &token, &sans, &patches),
                ),
            };
            if output == "-" {
                print!("{text}");
                continue;
            }
            let path = path_for(file);
            self.refuse_existing(&path);
            write_file(&path, text.as_bytes(), 0o644).unwrap_or_else(|e| self.fail(&e.to_string()));
            eprintln!("Created {}", path.display());
        }
    }

    /// `--talosconfig`, else `$TALOSCONFIG`, else `~/.talos/config`; an explicitly named file
    /// that does not exist is created empty (`clientconfig.Open`), as talosctl does.
    fn talosconfig_path(&self) -> PathBuf {
        if let Some(p) = self.parsed.value("talosconfig").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        if let Some(p) = std::env::var_os("TALOSCONFIG") {
            return PathBuf::from(p);
        }
        let home = std::env::var_os("HOME").unwrap_or_default();
        Path::new(&home).join(".talos").join("config")
    }

    fn open_talosconfig(&self) -> (PathBuf, TalosConfig) {
        let path = self.talosconfig_path();
        if !path.exists() {
            let empty = "context: \"\"\ncontexts: {}\n";
            write_file(&path, empty.as_bytes(), 0o600)
                .unwrap_or_else(|e| self.fail(&e.to_string()));
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            self.fail(&format!(
                "failed to open config file \"{}\": {}",
                path.display(),
                io_reason(&e)
            ))
        });
        let config = serde_saphyr::from_str(&text).unwrap_or_else(|e| {
            self.fail(&format!(
                "failed to open config file \"{}\": {e}",
                path.display()
            ))
        });
        (path, config)
    }

    /// `config endpoint` / `config node`: set the current context's list, save with 0600.
    fn edit_context(&self, set: impl FnOnce(&mut Context, Vec<String>)) {
        let (path, mut config) = self.open_talosconfig();
        if config.context.is_empty() {
            self.fail("no context is set");
        }
        let current = config.context.clone();
        let Some(ctx) = config.contexts.get_mut(&current) else {
            self.fail(&format!("context \"{current}\" is not defined"));
        };
        set(
            ctx,
            self.parsed
                .args
                .iter()
                .map(|a| a.trim().to_string())
                .collect(),
        );
        let text = serde_saphyr::to_string(&config).expect("talosconfig serializes");
        write_file(&path, text.as_bytes(), 0o600)
            .unwrap_or_else(|e| self.fail(&format!("error writing config: {e}")));
    }

    /// `WithClient` of `cmd/talosctl/pkg/talos/global/client.go`: the endpoint to dial and the
    /// nodes to target, from the flags, else the talosconfig's context.
    fn client(&self, command: &str) -> (String, String) {
        let (_, config) = self.open_talosconfig();
        let context_name = self
            .parsed
            .value("context")
            .map(str::to_string)
            .unwrap_or_else(|| config.context.clone());
        let context = config.contexts.get(&context_name);
        if context.is_none() {
            self.fail("failed to resolve config context");
        }
        let context = context.unwrap();
        let mut endpoints = self.parsed.values("endpoints", FlagType::StringSlice);
        if endpoints.is_empty() {
            endpoints = context.endpoints.clone();
        }
        if endpoints.is_empty() {
            self.fail("error constructing client: failed to determine endpoints");
        }
        let mut nodes = self.parsed.values("nodes", FlagType::StringSlice);
        if nodes.is_empty() {
            nodes = context.nodes.clone();
        }
        if nodes.is_empty() {
            self.fail(
                "nodes are not set for the command: please use `--nodes` flag or configuration file to set the nodes to run the command against",
            );
        }
        if nodes.len() > 1 && command != "version" {
            self.fail(&format!(
                "command \"{command}\" is not supported with multiple nodes"
            ));
        }
        (nodes[0].clone(), endpoints[0].clone())
    }

    /// Simulated nodes answer; unreachable ones fail as a real talosctl does.
    fn reach_node(&self, endpoint: &str, prefix: &str) {
        if setting("NODES").as_deref() != Some("unreachable") {
            return;
        }
        let reason = dial(endpoint);
        self.fail(&format!(
            "{prefix}rpc error: code = Unavailable desc = connection error: desc = \"{reason}\""
        ));
    }

    fn bootstrap(&self) {
        let (_, endpoint) = self.client("bootstrap");
        self.reach_node(&endpoint, "error executing bootstrap: ");
        let want: u32 = setting("TRANSIENT")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if want == 0 {
            return;
        }
        let counter = self
            .talosconfig_path()
            .with_file_name(".fake-talosctl-bootstrap-count");
        let count: u32 = std::fs::read_to_string(&counter)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        std::fs::write(&counter, (count + 1).to_string()).expect("fake talosctl: write counter");
        if count < want {
            self.fail(&format!(
                "error executing bootstrap: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp {endpoint}: connect: connection refused\""
            ));
        }
    }

    /// `upgrade-k8s` (`cmd/talosctl/cmd/talos/upgrade-k8s.go`): one node only (`client`
    /// refuses more, as `helpers.FailIfMultiNodes` does), the lowest version detected without `--from`, then the
    /// progress lines `pkg/cluster/kubernetes/talos_managed.go` logs, for each control plane.
    fn upgrade_k8s(&self) {
        let (node, endpoint) = self.client("upgrade-k8s");
        self.reach_node(&endpoint, "");
        let to = self.parsed.value("to").unwrap_or("1.37.0").to_string();
        if self.parsed.value("from").is_none() {
            let from = setting("K8S_FROM").unwrap_or_else(|| "1.36.3".into());
            println!("automatically detected the lowest Kubernetes version {from}");
        }
        println!("discovered controlplane nodes [\"{node}\"]");
        for service in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            println!("updating \"{service}\" to version \"{to}\"");
            println!(" > \"{node}\": starting update");
            println!(" < \"{node}\": successfully updated");
        }
    }

    /// `kubeconfig [local-path]` (`cmd/talosctl/cmd/talos/kubeconfig.go`).
    fn kubeconfig(&self) {
        let (node, endpoint) = self.client("kubeconfig");
        let mut merge = self.parsed.bool("merge", true);
        let force = self.parsed.bool("force", false);
        let mut path = match self.parsed.args.first() {
            Some(p) => PathBuf::from(p),
            None if merge => {
                self.fail("fake talosctl: merging into the default kubeconfig is not simulated")
            }
            None => std::env::current_dir().unwrap(),
        };
        if path.is_dir() {
            path = path.join("kubeconfig");
        }
        if path.exists() && !(force || merge) {
            self.fail(&format!(
                "kubeconfig file already exists, use --force to overwrite: \"{}\"",
                path.display()
            ));
        }
        if !path.exists() {
            merge = false;
        }
        self.reach_node(&endpoint, "error copying: ");
        if merge {
            self.fail("fake talosctl: merging into an existing kubeconfig is not simulated");
        }
        let (_, config) = self.open_talosconfig();
        let cluster = if config.context.is_empty() {
            "talos"
        } else {
            &config.context
        };
        // Talos writes client-certificate credentials; a fake cannot mint a certificate the
        // client would load, so its admin user carries a placeholder token instead, and the
        // cluster entry skips verification of a CA that does not exist.
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: https://{node}:6443\n    insecure-skip-tls-verify: true\ncontexts:\n- name: admin@{cluster}\n  context:\n    cluster: {cluster}\n    namespace: default\n    user: admin@{cluster}\ncurrent-context: admin@{cluster}\nusers:\n- name: admin@{cluster}\n  user:\n    token: fake-token\n"
        );
        if path.as_os_str() == "-" {
            print!("{text}");
            return;
        }
        write_file(&path, text.as_bytes(), 0o600).unwrap_or_else(|e| self.fail(&e.to_string()));
    }
}

/// What a gRPC dial to `endpoint` meets when no Talos answers there, in grpc-go's words (as
/// talosctl users report them, e.g. siderolabs/talos#7604 and #10880).
fn dial(endpoint: &str) -> String {
    let with_port = if endpoint
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        endpoint.to_string()
    } else {
        format!("{endpoint}:{APID_PORT}")
    };
    let addr: Option<SocketAddr> = with_port.to_socket_addrs().ok().and_then(|mut a| a.next());
    let Some(addr) = addr else {
        return format!(
            "transport: Error while dialing: dial tcp: lookup {with_port}: no such host"
        );
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "transport: Error while dialing: dial tcp {with_port}: connect: connection refused"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            format!("transport: Error while dialing: dial tcp {with_port}: i/o timeout")
        }
        Err(e) => format!("transport: Error while dialing: dial tcp {with_port}: {e}"),
        Ok(mut stream) => {
            // What answers a TLS ClientHello decides; a port with nothing behind it closes.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(&[0x16, 0x03, 0x01, 0x00, 0x00]);
            let mut buf = [0u8; 1];
            match stream.read(&mut buf) {
                Ok(0) => "transport: authentication handshake failed: EOF".into(),
                Ok(_) => {
                    "transport: authentication handshake failed: fake talosctl cannot talk to what answered"
                        .into()
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    "transport: authentication handshake failed: context deadline exceeded".into()
                }
                Err(_) => "transport: authentication handshake failed: read: connection reset by peer"
                    .into(),
            }
        }
    }
}

/// Go's wording for the usual open errors.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    // Like Go's os.WriteFile: a new file gets `mode`, an existing one keeps its own.
    f.write_all(data)
}

/// The bundle's shape: `Bundle` of `pkg/machinery/config/generate/secrets/secrets.go` as yaml.v3
/// writes it (lowercased field names). Every value is a placeholder, no key is real.
fn fake_secrets_bundle() -> String {
    let id = std::process::id();
    format!(
        "cluster:\n    id: fake-cluster-id-{id}\n    secret: fake-cluster-secret\nsecrets:\n    bootstraptoken: fake00.fakefakefakefake\n    secretboxencryptionsecret: RkFLRQ==\ntrustdinfo:\n    token: fake00.fakefakefakefake\ncerts:\n    etcd:\n        crt: RkFLRQ==\n        key: RkFLRQ==\n    k8s:\n        crt: RkFLRQ==\n        key: RkFLRQ==\n    k8saggregator:\n        crt: RkFLRQ==\n        key: RkFLRQ==\n    k8sserviceaccount:\n        key: RkFLRQ==\n    os:\n        crt: RkFLRQ==\n        key: RkFLRQ==\n"
    )
}

/// `secrets.LoadBundle` and the presence checks of `Bundle.Validate`; returns the bootstrap token.
fn load_secrets_bundle(file: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "failed to load secrets bundle: open {file}: {}",
            io_reason(&e)
        )
    })?;
    let v: serde_json::Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("failed to load secrets bundle: {e}"))?;
    let mut missing = Vec::new();
    for path in [
        "cluster.id",
        "cluster.secret",
        "secrets.bootstraptoken",
        "trustdinfo.token",
        "certs.etcd",
        "certs.k8s",
        "certs.k8saggregator",
        "certs.k8sserviceaccount",
        "certs.os",
    ] {
        let found = path
            .split('.')
            .try_fold(&v, |node, key| node.get(key))
            .is_some_and(|n| !n.is_null() && n.as_str() != Some(""));
        if !found {
            missing.push(format!("{path} is required"));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "failed to validate secrets bundle: {} error(s) occurred:\n\t* {}",
            missing.len(),
            missing.join("\n\t* ")
        ));
    }
    Ok(v["secrets"]["bootstraptoken"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// `validateClusterEndpoint`: an https URL with a host.
fn check_cluster_endpoint(endpoint: &str) -> Result<(), String> {
    match endpoint.split_once("://") {
        None if endpoint.contains(':') => Err(format!(
            "no scheme specified for the cluster endpoint URL\ntry: \"https://{endpoint}\""
        )),
        None => Err(format!(
            "no scheme and port specified for the cluster endpoint URL\ntry: \"https://{endpoint}:6443\""
        )),
        Some((scheme, rest)) if scheme != "https" => Err(format!(
            "the control plane endpoint URL should have scheme https://\ntry: \"https://{rest}\""
        )),
        Some((_, "")) => Err("error validating the cluster endpoint URL: empty host".into()),
        Some(_) => Ok(()),
    }
}

/// A machine config shaped like the head of what `gen config` writes, with what it was asked
/// for recorded in comments so tests can see the patches and SANs arrive.
fn machine_config(
    kind: &str,
    cluster: &str,
    endpoint: &str,
    token: &str,
    sans: &str,
    patches: &[String],
) -> String {
    let mut s = format!(
        "version: v1alpha1\nmachine:\n  type: {kind}\n  token: {token}\ncluster:\n  clusterName: {cluster}\n  controlPlane:\n    endpoint: {endpoint}\n# additional-sans: {sans}\n"
    );
    for p in patches {
        s.push_str(&format!("# patch: {p}\n"));
    }
    s
}
