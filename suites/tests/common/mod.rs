//! A fake API server behind kube's tower-test mock, and a scripted executor.
//!
//! The fake keeps just enough state to answer what the suites ask (create, get, list by name,
//! delete) and records every request, so tests assert on the method, path, query and body the
//! kit sent. Anything a test wants to answer differently goes through its `hook`, consulted
//! first. Watches hang (the fake never sends an event), so a wait either finds its object in the
//! initial list or runs into its timeout, as on a real cluster where nothing changes.
//!
//! Its answers take the shapes of the Kubernetes API model: created objects come back as posted
//! with the fields the API server fills (namespace, resourceVersion; a pod's status as the kubelet
//! reports it), lists are `<Kind>List` with a resourceVersion, and errors are metav1.Status with
//! the API server's messages (`<resource> "<name>" not found`, `... already exists`). Upstream
//! texts beyond that come from the files in `fixtures/` (see `fixtures/SOURCES.md`).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this helper"
)]

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use suites::kit::{ExecOutput, Executor, KitError, PodRef};

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Percent-decoded query string.
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Seen {
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }

    pub fn param(&self, key: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }

    pub fn params(&self, key: &str) -> Vec<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .collect()
    }

    pub fn is_watch(&self) -> bool {
        self.param("watch").as_deref() == Some("true")
    }

    pub fn dry_run(&self) -> bool {
        self.param("dryRun").as_deref() == Some("All")
    }
}

pub enum Reply {
    Json(u16, Value),
    Warned(u16, Vec<String>, Value),
    /// Never answer (a watch on which nothing happens).
    Hang,
}

fn decode(q: &str) -> String {
    let bytes = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves requests with `respond` and records them.
pub fn serve(mut respond: impl FnMut(&Seen) -> Reply + Send + 'static) -> (kube::Client, Log) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        let mut hung = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
            };
            let s = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: decode(parts.uri.query().unwrap_or("")),
                headers: parts.headers,
                body,
            };
            seen.lock().unwrap().push(s.clone());
            let (code, warnings, v) = match respond(&s) {
                Reply::Hang => {
                    hung.push(send);
                    continue;
                }
                Reply::Json(c, v) => (c, vec![], v),
                Reply::Warned(c, w, v) => (c, w, v),
            };
            let mut b = Response::builder()
                .status(code)
                .header("content-type", "application/json");
            for w in warnings {
                b = b.header("warning", w);
            }
            send.send_response(b.body(Body::from(serde_json::to_vec(&v).unwrap())).unwrap());
        }
    });
    (kube::Client::new(svc, "default"), log)
}

/// A metav1.Status error body as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// A file of `suites/tests/fixtures`, from whichever crate's tests include this helper.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../suites/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// Where a pod lands when the fake "schedules" it.
#[derive(Clone, Debug)]
pub struct Placement {
    pub node: String,
    pub host_ip: String,
    pub pod_ip: String,
    pub ready: bool,
}

/// A Talos v1.11.5 node's `osImage`, in the form Talos's own integration test asserts
/// (siderolabs/talos internal/integration/k8s/version.go: `Talos (<version>)`).
pub const TALOS_OS_IMAGE: &str = "Talos (v1.11.5)";

/// `status.nodeInfo` of a node: every field the Kubernetes API model (NodeSystemInfo) requires,
/// with what Talos v1.11.5 on amd64 reports (Talos kernels carry the `-talos` suffix; the
/// kubelet is the Kubernetes 1.34.1 the talos-basic profile pins).
fn node_info(os_image: &str) -> Value {
    json!({"architecture": "amd64", "bootID": "3f0c1f8e-6a54-4f4b-9d53-2b1f1c6a8e21",
           "containerRuntimeVersion": "containerd://2.1.5", "kernelVersion": "6.12.57-talos",
           "kubeProxyVersion": "", "kubeletVersion": "v1.34.1",
           "machineID": "9b1f8f4c2d7e4a6c8b3e5d1a7f2c4e6b", "operatingSystem": "linux",
           "osImage": os_image, "systemUUID": "9b1f8f4c-2d7e-4a6c-8b3e-5d1a7f2c4e6b"})
}

/// The fake cluster's state.
#[derive(Default)]
pub struct Cluster {
    pub namespaces: BTreeMap<String, Value>,
    /// (resource, namespace, name) -> object
    pub objects: BTreeMap<(String, String, String), Value>,
    pub placement: BTreeMap<String, Placement>,
    pub nodes: Vec<(String, String)>,
    /// What every node reports as `status.nodeInfo.osImage`.
    pub os_image: String,
    next_ip: u8,
    next_port: u16,
}

impl Cluster {
    pub fn new(nodes: &[(&str, &str)]) -> Cluster {
        let mut c = Cluster {
            nodes: nodes
                .iter()
                .map(|(n, ip)| (n.to_string(), ip.to_string()))
                .collect(),
            os_image: TALOS_OS_IMAGE.into(),
            next_ip: 10,
            next_port: 30080,
            ..Cluster::default()
        };
        c.objects.insert(
            ("services".into(), "default".into(), "kubernetes".into()),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "namespace": "default", "resourceVersion": "1"},
                   "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}}),
        );
        c
    }

    pub fn place(&mut self, pod: &str, node: &str, pod_ip: &str, ready: bool) {
        let host_ip = self
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .unwrap()
            .1
            .clone();
        self.placement.insert(
            pod.into(),
            Placement {
                node: node.into(),
                host_ip,
                pod_ip: pod_ip.into(),
                ready,
            },
        );
    }

    /// The default answers of an API server holding this state.
    pub fn answer(&mut self, s: &Seen) -> Reply {
        if s.is_watch() {
            return Reply::Hang;
        }
        let parts: Vec<&str> = s.path.trim_matches('/').split('/').collect();
        match (s.method.as_str(), parts.as_slice()) {
            ("POST", ["api", "v1", "namespaces"]) => {
                let mut ns = s.body.clone();
                let name = ns["metadata"]["name"].as_str().unwrap().to_string();
                if self.namespaces.contains_key(&name) {
                    return Reply::Json(
                        409,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": format!("namespaces \"{name}\" already exists"), "reason": "AlreadyExists", "code": 409}),
                    );
                }
                ns["metadata"]["resourceVersion"] = json!("1");
                self.namespaces.insert(name, ns.clone());
                Reply::Json(201, ns)
            }
            ("GET", ["api", "v1", "namespaces", name]) => match self.namespaces.get(*name) {
                Some(ns) => Reply::Json(200, ns.clone()),
                None => Reply::Json(
                    404,
                    status(404, "NotFound", &format!("namespaces \"{name}\" not found")),
                ),
            },
            ("DELETE", ["api", "v1", "namespaces", name]) => match self.namespaces.remove(*name) {
                Some(ns) => Reply::Json(200, ns),
                None => Reply::Json(
                    404,
                    status(404, "NotFound", &format!("namespaces \"{name}\" not found")),
                ),
            },
            ("GET", ["api", "v1", "nodes"]) => Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "7"},
                       "items": self.nodes.iter().map(|(n, ip)| json!({
                           "apiVersion": "v1", "kind": "Node", "metadata": {"name": n},
                           "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                                      "nodeInfo": node_info(&self.os_image)}})).collect::<Vec<_>>()}),
            ),
            ("GET", ["api", "v1", "pods"]) => Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "9"},
                       "items": self.objects.iter()
                           .filter(|((r, _, _), _)| r == "pods")
                           .map(|(_, v)| v.clone())
                           .collect::<Vec<_>>()}),
            ),
            ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
                let mut pod = s.body.clone();
                let name = pod["metadata"]["name"].as_str().unwrap().to_string();
                pod["metadata"]["namespace"] = json!(ns);
                pod["metadata"]["resourceVersion"] = json!("2");
                if s.dry_run() {
                    return Reply::Json(201, pod);
                }
                if let Some(p) = self.placement.get(&name) {
                    pod["spec"]["nodeName"] = json!(p.node);
                    pod["status"] = json!({
                        "phase": "Running",
                        "hostIP": p.host_ip,
                        "podIP": p.pod_ip,
                        "conditions": [
                            {"type": "PodScheduled", "status": "True"},
                            {"type": "Ready", "status": if p.ready { "True" } else { "False" },
                             "reason": if p.ready { Value::Null } else { json!("ContainersNotReady") }}
                        ]
                    });
                } else {
                    pod["status"] = json!({"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": "0/2 nodes are available: 2 node(s) didn't match pod affinity rules."}]});
                }
                self.objects
                    .insert(("pods".into(), ns.to_string(), name), pod.clone());
                Reply::Json(201, pod)
            }
            ("POST", ["api", "v1", "namespaces", ns, "services"]) => {
                let mut svc = s.body.clone();
                let name = svc["metadata"]["name"].as_str().unwrap().to_string();
                svc["metadata"]["namespace"] = json!(ns);
                svc["metadata"]["resourceVersion"] = json!("3");
                let kind = svc["spec"]["type"]
                    .as_str()
                    .unwrap_or("ClusterIP")
                    .to_string();
                if kind != "ExternalName" && svc["spec"]["clusterIP"].as_str() != Some("None") {
                    self.next_ip += 1;
                    svc["spec"]["clusterIP"] = json!(format!("10.96.12.{}", self.next_ip));
                }
                if kind == "NodePort" {
                    for p in svc["spec"]["ports"].as_array_mut().unwrap() {
                        self.next_port += 1;
                        p["nodePort"] = json!(self.next_port);
                    }
                }
                self.objects
                    .insert(("services".into(), ns.to_string(), name), svc.clone());
                Reply::Json(201, svc)
            }
            ("GET", ["api", "v1", "namespaces", ns, resource]) => {
                let wanted = s
                    .param("fieldSelector")
                    .and_then(|f| f.strip_prefix("metadata.name=").map(String::from));
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|((r, n, name), _)| {
                        r == resource && n == ns && wanted.as_ref().is_none_or(|w| w == name)
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                let kind = match *resource {
                    "pods" => "PodList",
                    "services" => "ServiceList",
                    _ => "List",
                };
                Reply::Json(
                    200,
                    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "9"}, "items": items}),
                )
            }
            ("GET", ["api", "v1", "namespaces", ns, resource, name]) => {
                match self
                    .objects
                    .get(&(resource.to_string(), ns.to_string(), name.to_string()))
                {
                    Some(v) => Reply::Json(200, v.clone()),
                    None => Reply::Json(
                        404,
                        status(404, "NotFound", &format!("{resource} \"{name}\" not found")),
                    ),
                }
            }
            _ => Reply::Json(
                404,
                status(
                    404,
                    "NotFound",
                    &format!("the fake API server does not serve {} {}", s.method, s.path),
                ),
            ),
        }
    }
}

/// A cluster behind the mock, with a per-test hook consulted before the defaults.
pub fn cluster(
    state: Cluster,
    mut hook: impl FnMut(&Seen, &mut Cluster) -> Option<Reply> + Send + 'static,
) -> (kube::Client, Log) {
    let mut state = state;
    serve(move |s| match hook(s, &mut state) {
        Some(r) => r,
        None => state.answer(s),
    })
}

type Answer = dyn Fn(&PodRef, &[String]) -> Result<ExecOutput, KitError> + Send + Sync;

/// An executor answering from a function of (pod, argv), and recording the calls.
pub struct ScriptedExec {
    pub calls: Mutex<Vec<(String, Vec<String>)>>,
    /// The bound of each call made through `exec_within`, with its argv.
    pub bounds: Mutex<Vec<(Vec<String>, std::time::Duration)>>,
    answer: Box<Answer>,
}

impl ScriptedExec {
    pub fn new(
        answer: impl Fn(&PodRef, &[String]) -> Result<ExecOutput, KitError> + Send + Sync + 'static,
    ) -> Arc<ScriptedExec> {
        Arc::new(ScriptedExec {
            calls: Mutex::new(Vec::new()),
            bounds: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        })
    }
}

impl Executor for ScriptedExec {
    fn exec<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        self.calls
            .lock()
            .unwrap()
            .push((pod.to_string(), argv.to_vec()));
        let r = (self.answer)(pod, argv);
        Box::pin(async move { r })
    }

    fn exec_within<'a>(
        &'a self,
        pod: &'a PodRef,
        argv: &'a [String],
        bound: std::time::Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        self.bounds.lock().unwrap().push((argv.to_vec(), bound));
        self.exec(pod, argv)
    }
}

pub fn out(exit_code: i32, stdout: &str, stderr: &str) -> Result<ExecOutput, KitError> {
    Ok(ExecOutput {
        exit_code,
        stdout: stdout.into(),
        stderr: stderr.into(),
    })
}

/// Fixture `<name>` split into stdout and stderr at `--- stderr`.
pub fn fixture_out(name: &str, exit_code: i32) -> Result<ExecOutput, KitError> {
    let text = fixture(name);
    let (stdout, stderr) = text.split_once("--- stderr\n").unwrap_or((&text, ""));
    out(exit_code, stdout.trim_end(), stderr)
}

pub fn ctx(nodes: u32, external_target: Option<&str>) -> suites::RunContext {
    suites::RunContext {
        features: suites::Features {
            kube_proxy_replacement: true,
            gateway_api: true,
            wireguard: true,
            node_encryption: false,
            hubble: false,
            hubble_relay: false,
            hubble_ui: false,
            l2_announcements: true,
            l7_proxy: true,
            host_firewall: false,
            bandwidth_manager: false,
            bbr: false,
            mutual_auth_spire: false,
            policy_enforcement: true,
            host_legacy_routing: false,
            routing: suites::Routing::Vxlan,
        },
        nodes,
        external_target: external_target.map(String::from),
        outside: None,
    }
}

/// Options for fast tests: three in a row, 1ms apart, short waits.
pub fn fast_options(run_id: &str) -> suites::RunOptions {
    let mut o = suites::RunOptions::new(run_id);
    o.retry = suites::kit::RetryPolicy {
        consecutive: 3,
        deadline: std::time::Duration::from_millis(200),
        interval: std::time::Duration::from_millis(1),
    };
    o.timeouts.pod_ready = std::time::Duration::from_millis(500);
    o.timeouts.controller = std::time::Duration::from_millis(500);
    o.timeouts.check = std::time::Duration::from_secs(10);
    o
}

/// The policies a fake API server holds, by name; a scripted datapath reads them to decide
/// what gets through.
pub type Policies = Arc<Mutex<BTreeMap<String, Value>>>;

/// Answers a namespace's GET with its uid, and the NetworkPolicy, CiliumNetworkPolicy and
/// CiliumClusterwideNetworkPolicy APIs from `policies` (a read-back carries the `Valid` status
/// Cilium's operator writes, from `ciliumnetworkpolicy-valid.json`); with `refuse`, creating
/// that policy fails with 403. `None` for every other request.
pub fn policy_api(
    s: &Seen,
    state: &Cluster,
    policies: &Policies,
    uid: &str,
    refuse: Option<&str>,
) -> Option<Reply> {
    let parts: Vec<&str> = s.path.trim_matches('/').split('/').collect();
    let plural = |p: &str| {
        [
            "networkpolicies",
            "ciliumnetworkpolicies",
            "ciliumclusterwidenetworkpolicies",
        ]
        .contains(&p)
    };
    let mut active = policies.lock().unwrap();
    match (s.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v1", "namespaces", name]) => {
            let mut ns = state.namespaces.get(*name)?.clone();
            ns["metadata"]["uid"] = json!(uid);
            Some(Reply::Json(200, ns))
        }
        ("POST", ["apis", _, _, "namespaces", _, p] | ["apis", _, _, p]) if plural(p) => {
            let name = s.body["metadata"]["name"].as_str().unwrap().to_string();
            if refuse == Some(name.as_str()) {
                return Some(Reply::Json(
                    403,
                    status(
                        403,
                        "Forbidden",
                        &format!("{p} \"{name}\" is forbidden: the test refuses it"),
                    ),
                ));
            }
            active.insert(name, s.body.clone());
            Some(Reply::Json(201, s.body.clone()))
        }
        ("GET", ["apis", _, _, "namespaces", _, p, name] | ["apis", _, _, p, name])
            if plural(p) =>
        {
            let mut o = active.get(*name)?.clone();
            o["status"] = fixture_json("ciliumnetworkpolicy-valid.json")["status"].clone();
            Some(Reply::Json(200, o))
        }
        ("DELETE", ["apis", _, _, "namespaces", _, p, name] | ["apis", _, _, p, name])
            if plural(p) =>
        {
            match active.remove(*name) {
                Some(o) => Some(Reply::Json(200, o)),
                None => Some(Reply::Json(
                    404,
                    status(404, "NotFound", &format!("{p} \"{name}\" not found")),
                )),
            }
        }
        _ => None,
    }
}

/// Waits briefly (a guard's delete runs on the runtime) until no policy is left.
pub async fn until_removed(policies: &Policies) {
    for _ in 0..100 {
        if policies.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        policies.lock().unwrap().is_empty(),
        "left behind: {:?}",
        policies.lock().unwrap().keys()
    );
}

/// Non-GET requests to `/apis/...`, as `METHOD path`.
pub fn api_writes(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.path.starts_with("/apis/") && s.method != "GET")
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// A pod of a Ready Cilium agent on `node`, as the chart labels it.
pub fn agent_pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "cilium"}},
           "spec": {"nodeName": node, "containers": [{"name": "cilium-agent"}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
}

type OutsideAnswer = dyn Fn(&[String]) -> Result<ExecOutput, KitError> + Send + Sync;

/// An outside client answering from a function of argv, and recording the calls.
pub struct ScriptedOutside {
    pub calls: Mutex<Vec<Vec<String>>>,
    answer: Box<OutsideAnswer>,
}

impl ScriptedOutside {
    pub fn new(
        answer: impl Fn(&[String]) -> Result<ExecOutput, KitError> + Send + Sync + 'static,
    ) -> Arc<ScriptedOutside> {
        Arc::new(ScriptedOutside {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        })
    }

    /// The answers a scripted pod executor gives for commands run in `ns/client`.
    pub fn like(exec: Arc<ScriptedExec>, ns: &str) -> Arc<ScriptedOutside> {
        let pod = PodRef {
            namespace: ns.into(),
            name: "client".into(),
            container: "client".into(),
        };
        ScriptedOutside::new(move |argv| (exec.answer)(&pod, argv))
    }
}

impl suites::kit::OutsideExec for ScriptedOutside {
    fn peer(&self) -> suites::kit::Peer {
        suites::kit::Peer::new("outside h1-outside", Some("10.5.0.9".into()))
    }

    fn exec<'a>(
        &'a self,
        argv: &'a [String],
        _bound: std::time::Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, KitError>> {
        self.calls.lock().unwrap().push(argv.to_vec());
        let r = (self.answer)(argv);
        Box::pin(async move { r })
    }
}

/// [`ctx`] with an outside client on the nodes' docker network and an L2 block.
pub fn ctx_outside(nodes: u32, l2_block: Option<&str>) -> suites::RunContext {
    suites::RunContext {
        outside: Some(suites::OutsideClient {
            origin: suites::OutsideOrigin::DockerNetwork,
            l2_block: l2_block.map(|b| suites::L2Block::Cidr(b.into())),
        }),
        ..ctx(nodes, None)
    }
}
