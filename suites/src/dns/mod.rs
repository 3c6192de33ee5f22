//! Cluster DNS, after the Kubernetes DNS e2e tests, plus the external lookup that breaks on Talos
//! when its host DNS forwarding meets Cilium's BPF host routing.
//!
//! Workloads ([`objects`]): `dns-client` (dig), two Ready backends with hostname + subdomain and
//! one backend that never becomes Ready, behind a headless Service `dns-headless` and a ClusterIP
//! Service `dns-svc` (named port `http`), and an ExternalName Service `dns-external`. Every lookup
//! is `dig` run in a pod ([`observe`]), retried until it gives the expected answer three times in
//! a row, and judged against the DNS specification ([`judge`]).

pub mod dig;
pub mod judge;
pub mod objects;
pub mod observe;
pub mod resolv_conf;

use crate::catalog::{CheckDecl, SuiteDecl, SuiteName};
use crate::kit::check::{CheckCtx, Env, check};
use crate::kit::errors::KitError;
use crate::rules::egress;
use crate::runner::SuiteImpl;

pub const NAME: SuiteName = SuiteName::new("dns");

pub const SUITE: SuiteDecl = SuiteDecl {
    runs_alone: None,
    name: NAME,
    applies: crate::rules::always,
    checks: CHECKS,
    run: Some(crate::runner::runner::<Dns>),
};

const CHECKS: &[CheckDecl] = &[
    check! {
        name: "kubernetes-default-fqdn",
        proves: "kubernetes.default.svc.cluster.local resolves to the API Service IP",
        anchor: "Kubernetes e2e: DNS should provide DNS for the cluster",
        assumes: "the cluster DNS implements the Kubernetes DNS specification (CoreDNS kubernetes plugin, every supported Kubernetes version): a Service's name resolves to its ClusterIP",
        observe: observe::kubernetes_default_fqdn,
        judge: judge::lookups,
    },
    check! {
        name: "search-path-partial-names",
        proves: "partial names resolve through the pod's search path",
        anchor: "Kubernetes e2e: DNS should resolve DNS of partial qualified names",
        assumes: "the kubelet writes <ns>.svc.<domain>, svc.<domain> and <domain> into a ClusterFirst pod's search list (kubelet, every version)",
        observe: observe::search_path_partial_names,
        judge: judge::lookups,
    },
    check! {
        name: "service-a-record",
        proves: "a Service's A record is its ClusterIP",
        anchor: "Kubernetes e2e: DNS should provide DNS for services",
        assumes: "DNS specification: <svc>.<ns>.svc.<domain> A is the ClusterIP",
        observe: observe::service_a_record,
        judge: judge::lookups,
    },
    check! {
        name: "headless-service-pod-ips",
        proves: "a headless Service resolves to exactly its ready pod IPs",
        anchor: "Kubernetes e2e: DNS should provide DNS for services (headless)",
        assumes: "DNS specification: a headless Service's A records are its ready endpoints (publishNotReadyAddresses false), as the EndpointSlice controller publishes them",
        observe: observe::headless_service_pod_ips,
        judge: judge::headless,
    },
    check! {
        name: "srv-named-port",
        proves: "an SRV record exists for a Service's named port",
        anchor: "Kubernetes e2e: DNS should provide DNS for services (SRV)",
        assumes: "DNS specification: _<port>._<proto>.<svc>.<ns>.svc.<domain> SRV names the port and the Service's FQDN",
        observe: observe::srv_named_port,
        judge: judge::lookups,
    },
    check! {
        name: "pod-a-record",
        proves: "a-b-c-d.<ns>.pod.cluster.local resolves to the pod IP",
        anchor: "Kubernetes e2e: DNS should provide DNS for pods",
        assumes: "CoreDNS's kubernetes plugin answers pod A records (`pods insecure`, in the Corefile Talos and kubeadm deploy)",
        observe: observe::pod_a_record,
        judge: judge::lookups,
    },
    check! {
        name: "hostname-subdomain",
        proves: "a pod with hostname and subdomain gets its record",
        anchor: "Kubernetes e2e: DNS should provide DNS for pods for Hostname",
        assumes: "DNS specification: a ready pod with hostname and a subdomain naming a headless Service resolves as <hostname>.<subdomain>.<ns>.svc.<domain>",
        observe: observe::hostname_subdomain,
        judge: judge::lookups,
    },
    check! {
        name: "externalname-cname",
        proves: "an ExternalName Service answers with a CNAME",
        anchor: "Kubernetes e2e: DNS should provide DNS for ExternalName services",
        assumes: "DNS specification: an ExternalName Service is a CNAME to its externalName, answered by the cluster DNS without asking upstream",
        observe: observe::externalname_cname,
        judge: judge::lookups,
    },
    check! {
        name: "dns-policy-none",
        proves: "dnsPolicy: None with custom nameservers is honoured",
        anchor: "Kubernetes e2e: DNS should support configurable pod DNS nameservers",
        assumes: "the kubelet writes a dnsPolicy None pod's dnsConfig (nameservers, searches, options) into its resolv.conf as given",
        observe: observe::dns_policy_none,
        judge: judge::policy_none,
    },
    check! {
        name: "external-name",
        proves: "an external name resolves from a pod (catches Talos hostDNS + BPF host routing)",
        anchor: "talos #9191/#10002, cilium #36737",
        assumes: "CoreDNS forwards names outside the cluster to its upstream. On Talos with forwardKubeDNSToHost (on by default for clusters created with 1.8 or later; through the Service kube-system/host-dns on 1.7) that is the host DNS, whose replies never reach CoreDNS when Cilium routes host traffic in BPF (kube-proxy replacement and BPF masquerading on, bpf.hostLegacyRouting not true): reliably from Cilium 1.16.5, in some setups before (siderolabs/talos#9191, #10002, cilium/cilium#36737), not fixed upstream. The judge names that breakage only when a cluster name resolves from the same pod, the nodes run Talos (Node osImage) or the host-dns Service exists, and cilium-config does not rule BPF host routing out",
        applies: egress,
        observe: observe::external_name,
        judge: judge::external,
    },
];

pub(crate) struct Dns;

impl SuiteImpl for Dns {
    type Fixture = observe::DnsFixture;

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<observe::DnsFixture, KitError> {
        observe::setup(env, log).await
    }
}
