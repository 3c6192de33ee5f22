//! Policies a check applies for one step and removes again: when the step ends, when the check
//! fails on the way (an error drops the guard) and when the run is interrupted (the engine drops
//! the suite's future). Namespaced policies would also go with their namespace; a
//! cluster-scoped one carries an ownerReference to the suite's namespace, so the garbage
//! collector removes it even if this process dies before it could.

use crate::kit::errors::KitError;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The most one round of deletes may take; the API server answers a delete at once.
const DELETE_BOUND: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    NetworkPolicy,
    CiliumNetworkPolicy,
    CiliumClusterwideNetworkPolicy,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::CiliumNetworkPolicy => "CiliumNetworkPolicy",
            Kind::CiliumClusterwideNetworkPolicy => "CiliumClusterwideNetworkPolicy",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            _ => "cilium.io/v2",
        }
    }

    pub fn resource(self) -> ApiResource {
        let (group, plural) = match self {
            Kind::NetworkPolicy => ("networking.k8s.io", "networkpolicies"),
            Kind::CiliumNetworkPolicy => ("cilium.io", "ciliumnetworkpolicies"),
            Kind::CiliumClusterwideNetworkPolicy => {
                ("cilium.io", "ciliumclusterwidenetworkpolicies")
            }
        };
        let version = if group == "cilium.io" { "v2" } else { "v1" };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, self.as_str()),
            plural,
        )
    }
}

/// One policy object, as it is posted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub kind: Kind,
    pub name: String,
    /// `None` for a cluster-scoped policy.
    pub namespace: Option<String>,
    pub body: Value,
}

impl Policy {
    /// `CiliumNetworkPolicy harness-network-policy-r1/l4-port`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.as_str(), self.name),
            None => format!("{} {}", self.kind.as_str(), self.name),
        }
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        let r = self.kind.resource();
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
            None => Api::all_with(client.clone(), &r),
        }
    }
}

/// What Cilium's operator wrote about a policy: its `Valid` condition (`True` with "Policy
/// validation succeeded", or `False` with the parse error), when it has written one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub policy: String,
    pub valid: Option<String>,
    pub message: Option<String>,
}

/// The `Valid` condition of a policy object's status.
pub fn status_of(policy: &str, object: &Value) -> Status {
    let valid = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Valid");
    Status {
        policy: policy.into(),
        valid: valid.and_then(|c| c["status"].as_str()).map(String::from),
        message: valid.and_then(|c| c["message"].as_str()).map(String::from),
    }
}

/// The policies applied so far; removes them when dropped unless [`Applied::remove`] already did.
pub struct Applied {
    client: kube::Client,
    items: Vec<Policy>,
}

impl Applied {
    pub fn new(client: &kube::Client) -> Applied {
        Applied {
            client: client.clone(),
            items: Vec::new(),
        }
    }

    pub async fn create(&mut self, p: &Policy) -> Result<(), KitError> {
        let body: DynamicObject =
            serde_json::from_value(p.body.clone()).map_err(|e| KitError::Parse {
                what: format!("the body of {}", p.describe()),
                detail: e.to_string(),
            })?;
        p.api(&self.client)
            .create(&PostParams::default(), &body)
            .await
            .map_err(KitError::api(format!("create {}", p.describe())))?;
        self.items.push(p.clone());
        Ok(())
    }

    /// Each applied policy's status as the API server holds it now.
    pub async fn statuses(&self) -> Result<Vec<Status>, KitError> {
        let mut out = Vec::new();
        for p in &self.items {
            if p.kind == Kind::NetworkPolicy {
                continue;
            }
            let o = p
                .api(&self.client)
                .get(&p.name)
                .await
                .map_err(KitError::api(format!("get {}", p.describe())))?;
            out.push(status_of(&p.describe(), &o.data));
        }
        Ok(out)
    }

    /// Deletes every applied policy (one already gone is fine) and says which.
    pub async fn remove(mut self) -> Result<Vec<String>, KitError> {
        let items = std::mem::take(&mut self.items);
        bounded_delete(&self.client, &items).await
    }
}

async fn bounded_delete(client: &kube::Client, items: &[Policy]) -> Result<Vec<String>, KitError> {
    tokio::time::timeout(DELETE_BOUND, delete_all(client, items))
        .await
        .map_err(|_| KitError::Timeout {
            what: format!(
                "the API server to delete {}",
                items
                    .iter()
                    .map(Policy::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            waited: DELETE_BOUND,
            last_seen: "no answer".into(),
        })?
}

async fn delete_all(client: &kube::Client, items: &[Policy]) -> Result<Vec<String>, KitError> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for p in items.iter().rev() {
        match p
            .api(client)
            .delete(&p.name, &DeleteParams::default())
            .await
        {
            Ok(_) => removed.push(p.describe()),
            Err(kube::Error::Api(s)) if s.code == 404 => removed.push(p.describe()),
            Err(e) => failed.push(KitError::api(format!("delete {}", p.describe()))(e).to_string()),
        }
    }
    if failed.is_empty() {
        Ok(removed)
    } else {
        Err(KitError::Api {
            action: "remove the check's policies".into(),
            detail: failed.join("; "),
        })
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if self.items.is_empty() {
            return;
        }
        // Dropped with policies still applied: the check failed on the way or the run was
        // interrupted. The runtime outlives the suite's future, so the delete still goes out.
        let items = std::mem::take(&mut self.items);
        let client = self.client.clone();
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move {
                let _ = bounded_delete(&client, &items).await;
            });
        }
    }
}
