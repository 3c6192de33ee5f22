//! Everything the PodSecurity suite says to the cluster: setup creates the level namespaces of
//! [`super::objects`]; the observe steps submit pods (server-side dry run, so admission runs in
//! full and nothing is kept) and read what admission and the ReplicaSet controller did.

use super::admission::{self, Admission};
use super::judge::*;
use super::objects::*;
use crate::kit::check::{CheckCtx, Env};
use crate::kit::errors::KitError;
use crate::kit::errors::describe_kube_error;
use crate::kit::namespace::{self, PsaLabels, PsaLevel};
use crate::kit::talos;
use crate::kit::workload::{self, Placement};
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::PostParams;
use kube::api::{Api, ListParams};
use kube::client::Body;
use kube::core::Resource;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Deserialize;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsaFixture {
    /// The suite's own namespace, labelled privileged like every harness namespace.
    pub own: String,
    pub baseline: String,
    pub restricted: String,
    pub warn: String,
    pub unlabelled: String,
}

fn dry_run_pod<'a>(
    ctx: &'a CheckCtx<'_>,
    ns: &'a str,
    pod: &'a Pod,
) -> impl std::future::Future<Output = Result<Admission, KitError>> + Send + 'a {
    let client = ctx.env.client.clone();
    async move {
        let a = create(&client, ns, pod, true).await?;
        ctx.note(format!(
            "dry-run create pod {ns}/{}: {}",
            pod.metadata.name.as_deref().unwrap_or(""),
            a.describe()
        ));
        Ok(a)
    }
}

pub(crate) async fn namespace_levels(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Vec<NsLabels>, KitError> {
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

async fn refusal(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
    violation: Violation,
) -> Result<Refusal, KitError> {
    let pod = violating_pod(violation, ctx.env);
    Ok(Refusal {
        namespace: f.baseline.clone(),
        violation,
        admission: dry_run_pod(ctx, &f.baseline, &pod).await?,
    })
}

pub(crate) async fn baseline_refuses_net_raw(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::NetRaw).await
}

pub(crate) async fn baseline_refuses_host_network(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::HostNetwork).await
}

pub(crate) async fn baseline_refuses_host_port(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::HostPort).await
}

pub(crate) async fn baseline_refuses_privileged(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Refusal, KitError> {
    refusal(f, ctx, Violation::Privileged).await
}

pub(crate) async fn restricted_admits_compliant_pod(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Admission, KitError> {
    dry_run_pod(ctx, &f.restricted, &restricted_pod(ctx.env)).await
}

pub(crate) async fn warn_level_warning_header(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<Admission, KitError> {
    dry_run_pod(ctx, &f.warn, &plain_pod(ctx.env, "psa-warned")).await
}

/// What the suite reads of a ReplicaSet: its pods and its ReplicaFailure condition.
pub fn rs_state(rs: &ReplicaSet) -> RsState {
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

pub(crate) async fn deployment_admitted_replicaset_failedcreate(
    f: &PsaFixture,
    ctx: &CheckCtx<'_>,
) -> Result<DeploymentObs, KitError> {
    let env = ctx.env;
    let ns = &f.baseline;
    let admission = create(&env.client, ns, &violating_deployment(env), false).await?;
    ctx.note(format!(
        "create deployment {ns}/{DEPLOYMENT}: {}",
        admission.describe()
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
            let state = rs_state(&rs);
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

pub(crate) async fn cluster_default_is_baseline(
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
        violating: dry_run_pod(
            ctx,
            &f.unlabelled,
            &violating_pod(Violation::NetRaw, ctx.env),
        )
        .await?,
        compliant: dry_run_pod(ctx, &f.unlabelled, &plain_pod(ctx.env, "psa-baseline-ok")).await?,
        node_os: talos::node_os(&ctx.env.client).await?,
    })
}

pub(crate) async fn harness_namespaces_labelled(
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

pub(crate) async fn setup(env: &Env, log: &CheckCtx<'_>) -> Result<PsaFixture, KitError> {
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

/// kube 4.2's typed `Api::create` returns the object and drops the response headers, and the
/// PodSecurity `warn` mode speaks only through `Warning` headers (RFC 7234 form:
/// `299 - "would violate PodSecurity \"restricted:latest\": ..."`). So this builds the same
/// request kube would (`kube::core::Request::create`, with `dryRun=All` when asked) and sends it
/// with `Client::send`, which returns the raw response with its headers. Dry-run runs admission in
/// full without persisting anything, so most PodSecurity checks never create a pod.
/// POSTs `obj` into `ns` (dry-run if asked) and reports what admission did.
pub async fn create<K>(
    client: &kube::Client,
    ns: &str,
    obj: &K,
    dry_run: bool,
) -> Result<Admission, KitError>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let action = format!(
        "{}create {} {ns}/{name}",
        if dry_run { "dry-run " } else { "" },
        K::kind(&())
    );
    let body = serde_json::to_vec(obj).map_err(|e| KitError::Parse {
        what: format!("{} {name} as JSON", K::kind(&())),
        detail: e.to_string(),
    })?;
    let pp = PostParams {
        dry_run,
        field_manager: Some("talos-cilium-harness".into()),
    };
    let req = kube::core::Request::new(K::url_path(&(), Some(ns)))
        .create(&pp, body)
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: e.to_string(),
        })?;
    let resp = client
        .send(req.map(Body::from))
        .await
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: describe_kube_error(&e),
        })?;
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| admission::parse_warning(v).unwrap_or_else(|| v.to_string()))
        .collect();
    let bytes = resp
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| KitError::Api {
            action: action.clone(),
            detail: describe_kube_error(&e),
        })?;
    admission::classify(status, warnings, &bytes).map_err(|detail| KitError::Api { action, detail })
}
