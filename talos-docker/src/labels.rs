//! The labels every Docker object of a cluster carries.
//!
//! The `io.harness.*` ones let `gc` find the leftovers of a run; the `talos.*` ones are those
//! `talosctl cluster create` sets, so `talosctl cluster destroy --name <cluster>` recognises our
//! clusters too.

use std::collections::HashMap;
use std::path::Path;

pub const RUN_ID: &str = "io.harness.run-id";
pub const CLUSTER: &str = "io.harness.cluster";
/// Unix seconds; gives `ls` and `gc --older-than` one age source for containers, networks and
/// volumes alike (Docker reports creation times in three different shapes).
pub const CREATED: &str = "io.harness.created";
/// On networks and containers: where the run keeps its secrets, so `down`/`gc` can delete them.
pub const RUN_DIR: &str = "io.harness.run-dir";

pub const TALOS_OWNED: &str = "talos.owned";
pub const TALOS_CLUSTER: &str = "talos.cluster.name";
pub const TALOS_TYPE: &str = "talos.type";

/// Labels for one object of a cluster.
pub fn object(run_id: &str, cluster: &str, created_unix: u64) -> HashMap<String, String> {
    HashMap::from([
        (RUN_ID.to_string(), run_id.to_string()),
        (CLUSTER.to_string(), cluster.to_string()),
        (CREATED.to_string(), created_unix.to_string()),
        (TALOS_OWNED.to_string(), "true".to_string()),
        (TALOS_CLUSTER.to_string(), cluster.to_string()),
    ])
}

pub fn with_run_dir(mut labels: HashMap<String, String>, dir: &Path) -> HashMap<String, String> {
    labels.insert(RUN_DIR.to_string(), dir.display().to_string());
    labels
}

/// Which harness objects an operation applies to. Empty means every harness object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub run_id: Option<String>,
    pub cluster: Option<String>,
}

impl Selector {
    pub fn all() -> Self {
        Selector::default()
    }

    pub fn run(run_id: impl Into<String>) -> Self {
        Selector {
            run_id: Some(run_id.into()),
            cluster: None,
        }
    }

    pub fn cluster(cluster: impl Into<String>) -> Self {
        Selector {
            run_id: None,
            cluster: Some(cluster.into()),
        }
    }

    pub fn run_cluster(run_id: impl Into<String>, cluster: impl Into<String>) -> Self {
        Selector {
            run_id: Some(run_id.into()),
            cluster: Some(cluster.into()),
        }
    }

    /// Docker `label` filter values; the engine ANDs them.
    pub fn label_filters(&self) -> Vec<String> {
        let mut filters = vec![match &self.run_id {
            Some(id) => format!("{RUN_ID}={id}"),
            None => RUN_ID.to_string(),
        }];
        if let Some(cluster) = &self.cluster {
            filters.push(format!("{CLUSTER}={cluster}"));
        }
        filters
    }

    pub fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), self.label_filters())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_filters() {
        assert_eq!(Selector::all().label_filters(), vec![RUN_ID.to_string()]);
        assert_eq!(
            Selector::run_cluster("r1", "c1").label_filters(),
            vec![
                "io.harness.run-id=r1".to_string(),
                "io.harness.cluster=c1".to_string()
            ]
        );
        assert_eq!(
            Selector::cluster("c1").label_filters(),
            vec![
                "io.harness.run-id".to_string(),
                "io.harness.cluster=c1".to_string()
            ]
        );
    }

    #[test]
    fn objects_are_recognisable_by_talosctl() {
        let l = object("r1", "c1", 7);
        assert_eq!(l[TALOS_OWNED], "true");
        assert_eq!(l[TALOS_CLUSTER], "c1");
        assert_eq!(l[CREATED], "7");
    }
}
