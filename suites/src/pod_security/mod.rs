//! PodSecurity admission as Talos configures it: namespaces labelled privileged, baseline,
//! restricted and warn-only, plus one left unlabelled to show the cluster default (Talos:
//! enforce=baseline, audit/warn=restricted, kube-system exempt).
//!
//! Everything here is an API conversation, no traffic: pods are created with server-side dry-run
//! (admission runs in full, nothing is persisted), except the Deployment, whose point is that the
//! ReplicaSet controller fails to create its pods afterwards.

pub mod admission;

use crate::catalog::SuiteName;
use crate::kit::check::check_impl;
use crate::kit::check::{CheckCtx, Env, Runnable};
use crate::kit::errors::KitError;
use crate::kit::namespace::{self, PSA_AUDIT, PSA_ENFORCE, PSA_WARN, PsaLabels, PsaLevel};
use crate::kit::verdict::Verdict;
use crate::kit::workload::{self, Placement};
use crate::runner::SuiteImpl;
use admission::Admission;
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, Event, Namespace, Pod, PodTemplateSpec, SeccompProfile,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::BTreeMap;

/// The suffixes of the namespaces this suite creates next to its own.
pub const BASELINE: &str = "baseline";
pub const RESTRICTED: &str = "restricted";
pub const WARN: &str = "warn";
pub const UNLABELLED: &str = "default";

pub const DEPLOYMENT: &str = "psa-deployment";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsaFixture {
    /// The suite's own namespace, labelled privileged like every harness namespace.
    pub own: String,
    pub baseline: String,
    pub restricted: String,
    pub warn: String,
    pub unlabelled: String,
}

fn levels(env: &Env) -> Vec<(String, PsaLabels)> {
    let name = |s| namespace::namespace_name(&env.run_id, env.suite, Some(s));
    vec![
        (name(BASELINE), PsaLabels::enforce(PsaLevel::Baseline)),
        (name(RESTRICTED), PsaLabels::enforce(PsaLevel::Restricted)),
        (
            name(WARN),
            // Enforce privileged so the warning is the only reaction, whatever the default.
            PsaLabels {
                enforce: Some(PsaLevel::Privileged),
                audit: Some(PsaLevel::Privileged),
                warn: Some(PsaLevel::Restricted),
            },
        ),
        (name(UNLABELLED), PsaLabels::default()),
    ]
}

/// A pod breaking one baseline control, as the refusal checks submit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    NetRaw,
    HostNetwork,
    HostPort,
    Privileged,
}

impl Violation {
    pub fn pod_name(self) -> &'static str {
        match self {
            Violation::NetRaw => "psa-net-raw",
            Violation::HostNetwork => "psa-host-network",
            Violation::HostPort => "psa-host-port",
            Violation::Privileged => "psa-privileged",
        }
    }

    /// The control name PodSecurity puts in its message, and a detail only this violation has.
    pub fn control(self) -> (&'static str, &'static str) {
        match self {
            Violation::NetRaw => ("non-default capabilities", "\"NET_RAW\""),
            Violation::HostNetwork => ("host namespaces", "hostNetwork=true"),
            Violation::HostPort => ("hostPort", "hostPort 8080"),
            Violation::Privileged => ("privileged", "securityContext.privileged=true"),
        }
    }

    pub fn pod(self, env: &Env) -> Pod {
        let mut c = workload::container("c", &env.images.client);
        c.command = Some(workload::idle_command());
        let mut host_network = None;
        match self {
            Violation::NetRaw => {
                c.security_context = Some(SecurityContext {
                    capabilities: Some(Capabilities {
                        add: Some(vec!["NET_RAW".into()]),
                        ..Capabilities::default()
                    }),
                    ..SecurityContext::default()
                })
            }
            Violation::HostNetwork => host_network = Some(true),
            Violation::HostPort => {
                c.ports = Some(vec![ContainerPort {
                    container_port: 8080,
                    host_port: Some(8080),
                    ..ContainerPort::default()
                }])
            }
            Violation::Privileged => {
                c.security_context = Some(SecurityContext {
                    privileged: Some(true),
                    ..SecurityContext::default()
                })
            }
        }
        let mut p = workload::pod(
            self.pod_name(),
            &env.run_labels(),
            &Placement::Anywhere,
            vec![c],
        );
        if let Some(s) = p.spec.as_mut() {
            s.host_network = host_network;
        }
        p
    }
}

/// A pod that meets every restricted control of current Kubernetes.
pub fn restricted_pod(env: &Env) -> Pod {
    let mut c = workload::container("c", &env.images.client);
    c.command = Some(workload::idle_command());
    c.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    });
    workload::pod(
        "psa-restricted",
        &env.run_labels(),
        &Placement::Anywhere,
        vec![c],
    )
}

/// Baseline-compliant, restricted-violating: what a warn=restricted namespace warns about.
pub fn plain_pod(env: &Env, name: &str) -> Pod {
    let mut c = workload::container("c", &env.images.client);
    c.command = Some(workload::idle_command());
    workload::pod(name, &env.run_labels(), &Placement::Anywhere, vec![c])
}

fn dry_run_pod<'a>(
    ctx: &'a CheckCtx<'_>,
    ns: &'a str,
    pod: &'a Pod,
) -> impl std::future::Future<Output = Result<Admission, KitError>> + Send + 'a {
    let client = ctx.env.client.clone();
    async move {
        let a = admission::create(&client, ns, pod, true).await?;
        ctx.note(format!(
            "dry-run create pod {ns}/{}: {}",
            pod.metadata.name.as_deref().unwrap_or(""),
            describe(&a)
        ));
        Ok(a)
    }
}

fn describe(a: &Admission) -> String {
    match a {
        Admission::Admitted { warnings } if warnings.is_empty() => "admitted".into(),
        Admission::Admitted { warnings } => {
            format!("admitted with warnings: {}", warnings.join(" | "))
        }
        Admission::Refused {
            code,
            reason,
            message,
        } => format!("refused {code} {reason}: {message}"),
    }
}

// ---- namespace-levels ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsLabels {
    pub name: String,
    pub expected: PsaLabels,
    pub labels: BTreeMap<String, String>,
}

#[allow(
    clippy::ptr_arg,
    reason = "a judge takes `&Observation`, and this observation is a Vec"
)]
pub fn judge_namespace_levels(o: &Vec<NsLabels>) -> Verdict {
    Verdict::all(o.iter().map(|ns| {
        let mut wrong = Vec::new();
        let mut shown = Vec::new();
        for (key, want) in [
            (PSA_ENFORCE, ns.expected.enforce),
            (PSA_AUDIT, ns.expected.audit),
            (PSA_WARN, ns.expected.warn),
        ] {
            let got = ns.labels.get(key).map(String::as_str);
            match (want.map(PsaLevel::as_str), got) {
                (w, g) if w == g => {
                    if let Some(g) = g {
                        shown.push(format!("{}={g}", key.rsplit('/').next().unwrap_or(key)));
                    }
                }
                (Some(w), Some(g)) => wrong.push(format!("{key} is {g}, expected {w}")),
                (Some(w), None) => wrong.push(format!("{key} is missing, expected {w}")),
                (None, Some(g)) => wrong.push(format!("{key} is {g}, expected no label (cluster default)")),
                (None, None) => {}
            }
        }
        let v = if wrong.is_empty() {
            Verdict::Pass(if shown.is_empty() {
                "no PodSecurity labels (cluster default)".into()
            } else {
                shown.join(" ")
            })
        } else {
            Verdict::Fail(format!(
                "{}; something rewrote the labels the harness set (a policy engine or namespace controller?)",
                wrong.join("; ")
            ))
        };
        (format!("namespace {}", ns.name), v)
    }))
}

async fn namespace_levels(f: &PsaFixture, ctx: &CheckCtx<'_>) -> Result<Vec<NsLabels>, KitError> {
    let api: Api<Namespace> = Api::all(ctx.env.client.clone());
    let mut wanted = vec![(f.own.clone(), PsaLabels::PRIVILEGED)];
    wanted.extend(levels(ctx.env));
    let mut out = Vec::new();
    for (name, expected) in wanted {
        let ns = api
            .get(&name)
            .await
            .map_err(KitError::api(format!("get namespace {name}")))?;
        out.push(NsLabels {
            name,
            expected,
            labels: ns.metadata.labels.unwrap_or_default(),
        });
    }
    Ok(out)
}

// ---- baseline refusals ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub namespace: String,
    pub violation: Violation,
    pub admission: Admission,
}

pub fn judge_refusal(r: &Refusal) -> Verdict {
    let (control, detail) = r.violation.control();
    let pod = r.violation.pod_name();
    match &r.admission {
        Admission::Refused {
            code: 403, message, ..
        } if message.contains("violates PodSecurity \"baseline:")
            && message.contains(control)
            && message.contains(detail) =>
        {
            Verdict::Pass(format!("403: {message}"))
        }
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "pod {pod} was refused, but not by PodSecurity baseline control \"{control}\" ({detail}): {code} {reason}: {message}"
        )),
        Admission::Admitted { warnings } => Verdict::Fail(format!(
            "namespace {} (enforce=baseline) admitted pod {pod}, which breaks the baseline control \"{control}\"; PodSecurity admission is not enforcing (check `kubectl get ns {} --show-labels` and the API server's admission configuration){}",
            r.namespace,
            r.namespace,
            if warnings.is_empty() {
                String::new()
            } else {
                format!("; warnings: {}", warnings.join(" | "))
            }
        )),
    }
}

async fn refusal(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
    violation: Violation,
) -> Result<Refusal, KitError> {
    let pod = violation.pod(ctx.env);
    Ok(Refusal {
        namespace: f.baseline.clone(),
        violation,
        admission: dry_run_pod(ctx, &f.baseline, &pod).await?,
    })
}

async fn baseline_refuses_net_raw(f: &PsaFixture, ctx: &CheckCtx<'_>) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::NetRaw).await
}

async fn baseline_refuses_host_network(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::HostNetwork).await
}

async fn baseline_refuses_host_port(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::HostPort).await
}

async fn baseline_refuses_privileged(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::Privileged).await
}

// ---- restricted admits a compliant pod ----

pub fn judge_restricted_admits(a: &Admission) -> Verdict {
    match a {
        Admission::Admitted { warnings } => {
            let psa: Vec<&String> = warnings
                .iter()
                .filter(|w| w.contains("PodSecurity"))
                .collect();
            if psa.is_empty() {
                Verdict::Pass("admitted without PodSecurity warnings".into())
            } else {
                Verdict::Fail(format!(
                    "admitted, but with PodSecurity warnings, so the pod is not restricted-compliant on this version: {}",
                    psa.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                ))
            }
        }
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "restricted refused a pod built to meet every restricted control ({code} {reason}: {message}); the restricted profile of this Kubernetes version asks for more, or another admission controller refused it"
        )),
    }
}

async fn restricted_admits_compliant_pod(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Admission, KitError> {
    dry_run_pod(ctx, &f.restricted, &restricted_pod(ctx.env)).await
}

// ---- warn level ----

pub fn judge_warning(a: &Admission) -> Verdict {
    match a {
        Admission::Admitted { warnings } => match warnings
            .iter()
            .find(|w| w.contains("would violate PodSecurity \"restricted:"))
        {
            Some(w) => Verdict::Pass(format!("admitted with Warning: {w}")),
            None => Verdict::Fail(format!(
                "admitted without a PodSecurity Warning header (warnings: [{}]); warn=restricted is not in force",
                warnings.join(" | ")
            )),
        },
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "a warn-only namespace (enforce=privileged, warn=restricted) refused the pod: {code} {reason}: {message}"
        )),
    }
}

async fn warn_level_warning_header(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Admission, KitError> {
    dry_run_pod(ctx, &f.warn, &plain_pod(ctx.env, "psa-warned")).await
}

// ---- deployment admitted, replicaset FailedCreate ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsFailure {
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsState {
    pub name: String,
    pub replicas: i32,
    pub failure: Option<RsFailure>,
}

impl RsState {
    pub fn from_rs(rs: &ReplicaSet) -> RsState {
        let status = rs.status.as_ref();
        RsState {
            name: rs.metadata.name.clone().unwrap_or_default(),
            replicas: status.map_or(0, |s| s.replicas),
            failure: status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                })
                .map(|c| RsFailure {
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentObs {
    pub namespace: String,
    pub admission: Admission,
    pub replica_set: Option<RsState>,
    /// FailedCreate events recorded on the ReplicaSet.
    pub events: Vec<String>,
    /// Set when the wait for FailedCreate ran out: what was last seen.
    pub gave_up: Option<String>,
}

pub fn judge_deployment(o: &DeploymentObs) -> Verdict {
    let warnings = match &o.admission {
        Admission::Refused {
            code,
            reason,
            message,
        } => {
            return Verdict::Fail(format!(
                "the Deployment itself was refused ({code} {reason}: {message}); PodSecurity enforces on pods only, so something else refused it"
            ));
        }
        Admission::Admitted { warnings } => warnings,
    };
    let Some(rs) = &o.replica_set else {
        return Verdict::Fail(format!(
            "no ReplicaSet appeared for Deployment {DEPLOYMENT} ({}); the Deployment controller is not running?",
            o.gave_up.as_deref().unwrap_or("nothing seen")
        ));
    };
    let from_condition = rs
        .failure
        .as_ref()
        .filter(|f| f.reason == "FailedCreate")
        .map(|f| f.message.clone());
    let refusal = from_condition.or_else(|| o.events.first().cloned());
    match refusal {
        Some(m) if m.contains("violates PodSecurity \"baseline:") => Verdict::Pass(format!(
            "Deployment admitted{}; ReplicaSet {} records FailedCreate: {m} ({} FailedCreate event(s))",
            if warnings.is_empty() {
                String::new()
            } else {
                format!(" with warning \"{}\"", warnings.join(" | "))
            },
            rs.name,
            o.events.len()
        )),
        Some(m) => Verdict::Fail(format!(
            "ReplicaSet {} failed to create pods, but not because of PodSecurity baseline: {m}",
            rs.name
        )),
        None if rs.replicas > 0 => Verdict::Fail(format!(
            "ReplicaSet {} created {} pod(s) adding NET_RAW in namespace {} (enforce=baseline): PodSecurity did not enforce on the controller's pods",
            rs.name, rs.replicas, o.namespace
        )),
        None => Verdict::Fail(format!(
            "ReplicaSet {} recorded no FailedCreate ({})",
            rs.name,
            o.gave_up.as_deref().unwrap_or("no condition, no event")
        )),
    }
}

fn violating_deployment(env: &Env) -> Deployment {
    let pod = Violation::NetRaw.pod(env);
    let labels = BTreeMap::from([(workload::LABEL_NAME.to_string(), DEPLOYMENT.to_string())]);
    let mut template_labels = env.run_labels();
    template_labels.extend(labels.clone());
    Deployment {
        metadata: ObjectMeta {
            name: Some(DEPLOYMENT.into()),
            labels: Some(env.run_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    ..ObjectMeta::default()
                }),
                spec: pod.spec,
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

async fn deployment_admitted_replicaset_failedcreate(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<DeploymentObs, KitError> {
    let env = ctx.env;
    let ns = &f.baseline;
    let admission = admission::create(&env.client, ns, &violating_deployment(env), false).await?;
    ctx.note(format!(
        "create deployment {ns}/{DEPLOYMENT}: {}",
        describe(&admission)
    ));
    let mut obs = DeploymentObs {
        namespace: ns.clone(),
        admission,
        replica_set: None,
        events: Vec::new(),
        gave_up: None,
    };
    if matches!(obs.admission, Admission::Refused { .. }) {
        return Ok(obs);
    }
    let rss: Api<ReplicaSet> = Api::namespaced(env.client.clone(), ns);
    let selector = format!("{}={DEPLOYMENT}", workload::LABEL_NAME);
    let mut stream =
        Box::pin(watcher(rss, watcher::Config::default().labels(&selector)).applied_objects());
    let mut last: Option<RsState> = None;
    let waited = tokio::time::timeout(env.timeouts.controller, async {
        while let Some(rs) = stream.try_next().await? {
            let state = RsState::from_rs(&rs);
            let done = state.failure.is_some();
            last = Some(state);
            if done {
                break;
            }
        }
        Ok::<_, watcher::Error>(())
    })
    .await;
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(KitError::Api {
                action: format!("watch replicasets in {ns}"),
                detail: e.to_string(),
            });
        }
        Err(_) => {
            obs.gave_up = Some(format!(
                "waited {}s for a ReplicaFailure condition; last seen: {}",
                env.timeouts.controller.as_secs(),
                last.as_ref()
                    .map(|r| format!(
                        "ReplicaSet {} with {} replica(s) and no failure condition",
                        r.name, r.replicas
                    ))
                    .unwrap_or_else(|| "no ReplicaSet".into())
            ))
        }
    }
    if let Some(rs) = &last {
        let events: Api<Event> = Api::namespaced(env.client.clone(), ns);
        let lp = ListParams::default().fields(&format!(
            "involvedObject.kind=ReplicaSet,involvedObject.name={},reason=FailedCreate",
            rs.name
        ));
        obs.events = events
            .list(&lp)
            .await
            .map_err(KitError::api(format!(
                "list FailedCreate events of replicaset {ns}/{}",
                rs.name
            )))?
            .items
            .into_iter()
            .filter_map(|e| e.message)
            .collect();
    }
    obs.replica_set = last;
    Ok(obs)
}

// ---- cluster default ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultLevel {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// A pod adding NET_RAW: baseline must refuse it.
    pub violating: Admission,
    /// A plain pod: baseline must admit it (restricted would not).
    pub compliant: Admission,
}

pub fn judge_default_level(o: &DefaultLevel) -> Verdict {
    if let Some(level) = o.labels.get(PSA_ENFORCE) {
        return Verdict::Fail(format!(
            "namespace {} carries {PSA_ENFORCE}={level}, so it cannot show the cluster default",
            o.namespace
        ));
    }
    match &o.violating {
        Admission::Admitted { .. } => {
            return Verdict::Fail(format!(
                "the unlabelled namespace {} admitted a pod adding NET_RAW: the cluster has no baseline default. Talos sets enforce=baseline in the API server's PodSecurity admission configuration (cluster.apiServer.admissionControl); here it is missing or privileged, so every unlabelled namespace runs privileged pods",
                o.namespace
            ));
        }
        Admission::Refused { message, .. }
            if message.contains("violates PodSecurity \"restricted:") =>
        {
            return Verdict::Fail(format!(
                "the cluster default is restricted, not baseline (as Talos documents): {message}"
            ));
        }
        Admission::Refused { message, .. }
            if !message.contains("violates PodSecurity \"baseline:") =>
        {
            return Verdict::Fail(format!(
                "the NET_RAW pod was refused, but not by PodSecurity baseline: {message}"
            ));
        }
        Admission::Refused { .. } => {}
    }
    match &o.compliant {
        Admission::Refused {
            code,
            reason,
            message,
        } => Verdict::Fail(format!(
            "the cluster default refused a baseline-compliant pod ({code} {reason}: {message}); it is stricter than baseline"
        )),
        Admission::Admitted { .. } => Verdict::Pass(format!(
            "unlabelled namespace {}: {}; a baseline-compliant pod was admitted",
            o.namespace,
            match &o.violating {
                Admission::Refused { message, .. } => message.as_str(),
                Admission::Admitted { .. } => "",
            }
        )),
    }
}

async fn cluster_default_is_baseline(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<DefaultLevel, KitError> {
    let ns = Api::<Namespace>::all(ctx.env.client.clone())
        .get(&f.unlabelled)
        .await
        .map_err(KitError::api(format!("get namespace {}", f.unlabelled)))?;
    Ok(DefaultLevel {
        namespace: f.unlabelled.clone(),
        labels: ns.metadata.labels.unwrap_or_default(),
        violating: dry_run_pod(ctx, &f.unlabelled, &Violation::NetRaw.pod(ctx.env)).await?,
        compliant: dry_run_pod(ctx, &f.unlabelled, &plain_pod(ctx.env, "psa-baseline-ok")).await?,
    })
}

// ---- harness namespaces ----

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HarnessNamespace {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The connectivity client (NET_RAW) and host-network pod, as the harness deploys them.
    pub client: Admission,
    pub host_netns: Admission,
}

pub fn judge_harness_namespace(o: &HarnessNamespace) -> Verdict {
    let enforce = o.labels.get(PSA_ENFORCE).map(String::as_str);
    if enforce != Some("privileged") {
        return Verdict::Fail(format!(
            "harness namespace {} has {PSA_ENFORCE}={}, expected privileged; its NET_RAW and hostNetwork probes would be refused under Talos's baseline default",
            o.namespace,
            enforce.unwrap_or("(unset)")
        ));
    }
    let refused: Vec<String> = [
        ("client (NET_RAW)", &o.client),
        ("host-netns (hostNetwork)", &o.host_netns),
    ]
    .into_iter()
    .filter_map(|(what, a)| match a {
        Admission::Refused { message, .. } => Some(format!("{what} refused: {message}")),
        Admission::Admitted { .. } => None,
    })
    .collect();
    if refused.is_empty() {
        Verdict::Pass(format!(
            "{} is labelled enforce=privileged and admits the harness's NET_RAW and hostNetwork pods",
            o.namespace
        ))
    } else {
        Verdict::Fail(format!(
            "{} is labelled enforce=privileged, yet: {}",
            o.namespace,
            refused.join("; ")
        ))
    }
}

async fn harness_namespaces_labelled(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<HarnessNamespace, KitError> {
    let env = ctx.env;
    let ns = Api::<Namespace>::all(env.client.clone())
        .get(&f.own)
        .await
        .map_err(KitError::api(format!("get namespace {}", f.own)))?;
    let labels = env.run_labels();
    let client = workload::client_pod(
        "psa-harness-client",
        &labels,
        &env.images.client,
        &Placement::Anywhere,
    );
    let host = workload::host_netns_pod(
        "psa-harness-host-netns",
        &labels,
        &env.images.client,
        &Placement::Anywhere,
    );
    Ok(HarnessNamespace {
        namespace: f.own.clone(),
        labels: ns.metadata.labels.unwrap_or_default(),
        client: dry_run_pod(ctx, &f.own, &client).await?,
        host_netns: dry_run_pod(ctx, &f.own, &host).await?,
    })
}

pub(crate) struct PodSecurity;

impl SuiteImpl for PodSecurity {
    type Fixture = PsaFixture;
    const SUITE: SuiteName = SuiteName::PodSecurity;

    fn checks() -> Vec<Box<dyn Runnable<PsaFixture>>> {
        vec![
            check_impl!("namespace-levels", namespace_levels, judge_namespace_levels),
            check_impl!(
                "baseline-refuses-net-raw",
                baseline_refuses_net_raw,
                judge_refusal
            ),
            check_impl!(
                "baseline-refuses-host-network",
                baseline_refuses_host_network,
                judge_refusal
            ),
            check_impl!(
                "baseline-refuses-host-port",
                baseline_refuses_host_port,
                judge_refusal
            ),
            check_impl!(
                "baseline-refuses-privileged",
                baseline_refuses_privileged,
                judge_refusal
            ),
            check_impl!(
                "restricted-admits-compliant-pod",
                restricted_admits_compliant_pod,
                judge_restricted_admits
            ),
            check_impl!(
                "warn-level-warning-header",
                warn_level_warning_header,
                judge_warning
            ),
            check_impl!(
                "deployment-admitted-replicaset-failedcreate",
                deployment_admitted_replicaset_failedcreate,
                judge_deployment
            ),
            check_impl!(
                "cluster-default-is-baseline",
                cluster_default_is_baseline,
                judge_default_level
            ),
            check_impl!(
                "harness-namespaces-labelled",
                harness_namespaces_labelled,
                judge_harness_namespace
            ),
        ]
    }

    fn extra_namespaces(env: &Env) -> Vec<String> {
        levels(env).into_iter().map(|(n, _)| n).collect()
    }

    async fn setup(
        env: &Env,
        _wanted: &[&'static str],
        log: &CheckCtx<'_>,
    ) -> Result<PsaFixture, KitError> {
        let ls = levels(env);
        for (name, psa) in &ls {
            let ns = namespace::test_namespace(name, &env.run_id, env.suite, *psa);
            namespace::create(&env.client, &ns).await?;
            log.note(format!(
                "namespace {name} created with enforce={} audit={} warn={}",
                psa.enforce.map_or("(default)", PsaLevel::as_str),
                psa.audit.map_or("(default)", PsaLevel::as_str),
                psa.warn.map_or("(default)", PsaLevel::as_str)
            ));
        }
        Ok(PsaFixture {
            own: env.namespace.clone(),
            baseline: ls[0].0.clone(),
            restricted: ls[1].0.clone(),
            warn: ls[2].0.clone(),
            unlabelled: ls[3].0.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str) -> Admission {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        admission::classify(403, vec![], text.as_bytes()).unwrap()
    }

    fn refusal(v: Violation, a: Admission) -> Refusal {
        Refusal {
            namespace: "harness-pod-security-r1-baseline".into(),
            violation: v,
            admission: a,
        }
    }

    #[test]
    fn each_baseline_refusal_must_name_its_own_control() {
        for (v, f) in [
            (Violation::NetRaw, "status-403-baseline-net-raw.json"),
            (
                Violation::HostNetwork,
                "status-403-baseline-host-network.json",
            ),
            (Violation::HostPort, "status-403-baseline-host-port.json"),
            (Violation::Privileged, "status-403-baseline-privileged.json"),
        ] {
            assert!(
                judge_refusal(&refusal(v, status(f))).is_pass(),
                "{v:?} on {f}"
            );
        }
        // The NET_RAW refusal does not prove the hostNetwork control.
        let v = judge_refusal(&refusal(
            Violation::HostNetwork,
            status("status-403-baseline-net-raw.json"),
        ));
        assert!(v.message().starts_with("pod psa-host-network was refused, but not by PodSecurity baseline control \"host namespaces\""), "{}", v.message());
    }

    #[test]
    fn an_rbac_403_is_not_a_podsecurity_refusal() {
        let v = judge_refusal(&refusal(
            Violation::NetRaw,
            status("status-403-rbac-forbidden.json"),
        ));
        assert!(!v.is_pass());
        assert!(
            v.message().contains("cannot create resource"),
            "{}",
            v.message()
        );
    }

    #[test]
    fn admission_in_baseline_fails_with_where_to_look() {
        let v = judge_refusal(&refusal(
            Violation::Privileged,
            Admission::Admitted { warnings: vec![] },
        ));
        assert!(v.message().starts_with("namespace harness-pod-security-r1-baseline (enforce=baseline) admitted pod psa-privileged"), "{}", v.message());
    }

    #[test]
    fn warn_needs_the_restricted_warning() {
        let w = std::fs::read_to_string(format!(
            "{}/tests/fixtures/warning-header-restricted.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let text = admission::parse_warning(w.trim()).unwrap();
        assert!(
            judge_warning(&Admission::Admitted {
                warnings: vec![text]
            })
            .is_pass()
        );
        assert!(!judge_warning(&Admission::Admitted { warnings: vec![] }).is_pass());
        assert!(!judge_warning(&status("status-403-baseline-net-raw.json")).is_pass());
    }

    #[test]
    fn restricted_admission_must_be_clean() {
        assert!(judge_restricted_admits(&Admission::Admitted { warnings: vec![] }).is_pass());
        assert!(!judge_restricted_admits(&status("status-403-restricted-net-raw.json")).is_pass());
    }

    #[test]
    fn deployment_passes_only_with_a_podsecurity_failedcreate() {
        let rs: ReplicaSet = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/tests/fixtures/replicaset-failedcreate-baseline.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let events: k8s_openapi::List<Event> = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/tests/fixtures/eventlist-failedcreate-baseline.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let w = std::fs::read_to_string(format!(
            "{}/tests/fixtures/warning-header-baseline-deployment.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let obs = DeploymentObs {
            namespace: "harness-pod-security-r1-baseline".into(),
            admission: Admission::Admitted {
                warnings: vec![admission::parse_warning(w.trim()).unwrap()],
            },
            replica_set: Some(RsState::from_rs(&rs)),
            events: events.items.into_iter().filter_map(|e| e.message).collect(),
            gave_up: None,
        };
        let v = judge_deployment(&obs);
        assert!(v.is_pass(), "{v:?}");
        assert!(v.message().contains("ReplicaSet psa-deployment-6d9f7c5b8d records FailedCreate: pods \"psa-deployment-6d9f7c5b8d-x7k2p\" is forbidden"), "{}", v.message());
        let created = DeploymentObs {
            replica_set: Some(RsState {
                name: "psa-deployment-1".into(),
                replicas: 1,
                failure: None,
            }),
            events: vec![],
            ..obs.clone()
        };
        assert!(
            judge_deployment(&created)
                .message()
                .contains("PodSecurity did not enforce on the controller's pods")
        );
        let none = DeploymentObs {
            replica_set: None,
            gave_up: Some("waited 60s".into()),
            ..obs
        };
        assert!(!judge_deployment(&none).is_pass());
    }

    #[test]
    fn cluster_default_must_be_exactly_baseline() {
        let base = DefaultLevel {
            namespace: "harness-pod-security-r1-default".into(),
            labels: BTreeMap::from([("io.harness.run-id".to_string(), "r1".to_string())]),
            violating: status("status-403-baseline-net-raw.json"),
            compliant: Admission::Admitted { warnings: vec![] },
        };
        assert!(judge_default_level(&base).is_pass());
        let open = DefaultLevel {
            violating: Admission::Admitted { warnings: vec![] },
            ..base.clone()
        };
        assert!(
            judge_default_level(&open)
                .message()
                .contains("cluster.apiServer.admissionControl")
        );
        let strict = DefaultLevel {
            violating: status("status-403-restricted-net-raw.json"),
            ..base.clone()
        };
        assert!(
            judge_default_level(&strict)
                .message()
                .starts_with("the cluster default is restricted, not baseline")
        );
        let mut labelled = base;
        labelled
            .labels
            .insert(PSA_ENFORCE.into(), "baseline".into());
        assert!(!judge_default_level(&labelled).is_pass());
    }

    #[test]
    fn harness_namespace_needs_the_label_and_the_admissions() {
        let ok = HarnessNamespace {
            namespace: "harness-pod-security-r1".into(),
            labels: BTreeMap::from([(PSA_ENFORCE.to_string(), "privileged".to_string())]),
            client: Admission::Admitted { warnings: vec![] },
            host_netns: Admission::Admitted { warnings: vec![] },
        };
        assert!(judge_harness_namespace(&ok).is_pass());
        let unlabelled = HarnessNamespace {
            labels: BTreeMap::new(),
            ..ok.clone()
        };
        assert!(
            judge_harness_namespace(&unlabelled)
                .message()
                .contains("expected privileged")
        );
        let refused = HarnessNamespace {
            host_netns: status("status-403-baseline-host-network.json"),
            ..ok
        };
        assert!(
            judge_harness_namespace(&refused)
                .message()
                .contains("host-netns (hostNetwork) refused")
        );
    }

    #[test]
    fn namespace_levels_name_the_wrong_label() {
        let good = NsLabels {
            name: "harness-pod-security-r1-warn".into(),
            expected: PsaLabels {
                enforce: Some(PsaLevel::Privileged),
                audit: Some(PsaLevel::Privileged),
                warn: Some(PsaLevel::Restricted),
            },
            labels: BTreeMap::from([
                (PSA_ENFORCE.to_string(), "privileged".to_string()),
                (PSA_AUDIT.to_string(), "privileged".to_string()),
                (PSA_WARN.to_string(), "restricted".to_string()),
            ]),
        };
        assert!(judge_namespace_levels(&vec![good.clone()]).is_pass());
        let mut bad = good;
        bad.labels.insert(PSA_WARN.into(), "baseline".into());
        assert_eq!(
            judge_namespace_levels(&vec![bad]),
            Verdict::Fail("namespace harness-pod-security-r1-warn: pod-security.kubernetes.io/warn is baseline, expected restricted; something rewrote the labels the harness set (a policy engine or namespace controller?)".into())
        );
    }
}
