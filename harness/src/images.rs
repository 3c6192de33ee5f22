//! Every image a matrix needs, and a cache of them on disk: the Talos node image of each cell,
//! the images the Cilium chart deploys for each cell's merged values (read from what `helm
//! template` renders, so a profile without Hubble does not list Hubble's), and the probe
//! workloads'. `pull` fetches the absent ones, `save` writes each as a `docker save` archive
//! named by its registry digest (or image ID for a local image), `load` puts them back, so a CI
//! runner restores the cache instead of pulling every image on every node every run.

use crate::install::helm::{ChartSource, ClusterApis, HelmInstall};
use crate::plan::{CellPlan, Plan};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use talos_docker::bollard;
use talos_docker::docker::Engine;

/// What needs an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Kind {
    /// A Talos node.
    Talos,
    /// Deployed by the Cilium chart (agent, operator, Envoy, Hubble, ...).
    Cilium,
    /// The suites' probe workloads.
    Probe,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Talos => "talos",
            Kind::Cilium => "cilium",
            Kind::Probe => "probe",
        }
    }
}

/// Image reference → what uses it (`talos v1.11.5`, `cilium 1.18.4`, `probe client`).
pub type ImageList = BTreeMap<String, Vec<(Kind, String)>>;

fn add(list: &mut ImageList, image: String, kind: Kind, what: String) {
    let users = list.entry(image).or_default();
    if !users.contains(&(kind, what.clone())) {
        users.push((kind, what));
    }
}

/// Every `image` of a container (init and ephemeral too) in rendered manifests.
pub fn images_in_manifests(rendered: &str) -> Result<Vec<String>, String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if matches!(
                        k.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) && let Value::Array(items) = child
                    {
                        out.extend(
                            items
                                .iter()
                                .filter_map(|c| c.get("image")?.as_str().map(str::to_string)),
                        );
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(rendered)
        .map_err(|e| format!("the rendered chart is not YAML: {e}"))?;
    let mut out = Vec::new();
    docs.iter().for_each(|d| walk(d, &mut out));
    out.sort();
    out.dedup();
    Ok(out)
}

/// What the chart deploys for one cell: `helm template` of the cell's merged values with the
/// install's own arguments.
pub async fn cilium_images(
    cell: &CellPlan,
    helm: &Path,
    chart: &ChartSource,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let values = dir.path().join("values.yaml");
    let text = serde_saphyr::to_string(&cell.values).map_err(|e| e.to_string())?;
    std::fs::write(&values, text).map_err(|e| format!("{}: {e}", values.display()))?;
    let install = HelmInstall {
        helm: helm.to_path_buf(),
        // Never read by `helm template`; a path that cannot hold a real kubeconfig.
        kubeconfig: dir.path().join("no-kubeconfig"),
        chart: chart.clone(),
        version: cell.cell.cilium.to_string(),
        values,
        timeout,
    };
    let apis = ClusterApis {
        kubernetes: cell.cell.kubernetes.to_string(),
        api_versions: Vec::new(),
    };
    images_in_manifests(&install.template(&apis).await?)
}

/// Every image of `plan` of the given kinds (all when `kinds` is empty).
pub async fn list(
    plan: &Plan,
    kinds: &[Kind],
    talos_repo: &str,
    probes: &suites::kit::images::Images,
    helm: &Path,
    chart: &ChartSource,
    timeout: Duration,
) -> Result<ImageList, String> {
    let wanted = |k: Kind| kinds.is_empty() || kinds.contains(&k);
    let mut out = ImageList::new();
    for cell in &plan.cells {
        if wanted(Kind::Talos) {
            add(
                &mut out,
                format!("{talos_repo}:{}", cell.cell.talos),
                Kind::Talos,
                format!("talos {}", cell.cell.talos),
            );
        }
        if wanted(Kind::Cilium) {
            for image in cilium_images(cell, helm, chart, timeout)
                .await
                .map_err(|e| format!("{}: {e}", cell.id))?
            {
                add(
                    &mut out,
                    image,
                    Kind::Cilium,
                    format!("cilium {}", cell.cell.cilium),
                );
            }
        }
    }
    if wanted(Kind::Probe) && !plan.cells.is_empty() {
        for pin in crate::report::provenance::probe_images(probes) {
            add(
                &mut out,
                pin.reference,
                Kind::Probe,
                format!("probe {}", pin.role),
            );
        }
    }
    Ok(out)
}

/// The list as a person reads it: an image a line, with what uses it.
pub fn render(list: &ImageList) -> String {
    let width = list.keys().map(String::len).max().unwrap_or(0);
    list.iter()
        .map(|(image, users)| {
            let users: Vec<&str> = users.iter().map(|(_, w)| w.as_str()).collect();
            format!("{image:<width$}  {}\n", users.join(", "))
        })
        .collect()
}

/// One archive of the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub reference: String,
    /// The image ID (`sha256:...`): what `load` checks the engine has.
    pub id: String,
    /// The registry digest (`repo@sha256:...`) when the image came from a registry.
    pub digest: Option<String>,
    /// The archive's file name in the cache: the digest's hex, else the ID's.
    pub file: String,
}

/// The cache directory's table of contents.
pub const INDEX: &str = "index.json";

fn read_index(dir: &Path) -> Result<Vec<Entry>, String> {
    let path = dir.join(INDEX);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_index(dir: &Path, entries: &[Entry]) -> Result<(), String> {
    let text = serde_json::to_string_pretty(entries).expect("plain data");
    crate::report::junit::write_file_atomically(text.as_bytes(), &dir.join(INDEX))
        .map_err(|e| e.to_string())
}

fn hex(id: &str) -> &str {
    id.rsplit(':').next().unwrap_or(id)
}

/// Pulls each absent image (present ones are left as they are).
pub async fn pull(
    engine: &Engine,
    images: &[String],
    timeouts: &talos_docker::spec::Timeouts,
) -> Result<(), Vec<String>> {
    let mut failed = Vec::new();
    for image in images {
        if let Err(e) = engine.ensure_image(image, timeouts).await {
            failed.push(e.to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

/// Writes each image into `dir` (one archive per image, skipped when the archive is there) and
/// updates the index; returns how many archives were written.
pub async fn save(engine: &Engine, images: &[String], dir: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut index = read_index(dir)?;
    let mut written = 0;
    for image in images {
        let inspect = engine.client().inspect_image(image).await.map_err(|e| {
            format!("{image} is not in the Docker engine ({e}); `harness images pull` it first")
        })?;
        let id = inspect.id.unwrap_or_default();
        let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
        let digest = inspect
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.starts_with(&format!("{repo}@")));
        let key = digest.as_deref().map_or(hex(&id), hex).to_string();
        let file = format!("{key}.tar");
        let path = dir.join(&file);
        if !path.is_file() {
            let tmp = dir.join(format!(".{file}.partial"));
            let mut out = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            let mut stream = engine.client().export_image(image);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| format!("docker save {image}: {e}"))?;
                tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                    .await
                    .map_err(|e| format!("{}: {e}", tmp.display()))?;
            }
            tokio::io::AsyncWriteExt::flush(&mut out)
                .await
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
            std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
            written += 1;
        }
        index.retain(|e| e.reference != *image);
        index.push(Entry {
            reference: image.clone(),
            id,
            digest,
            file,
        });
    }
    index.sort_by(|a, b| a.reference.cmp(&b.reference));
    write_index(dir, &index)?;
    Ok(written)
}

/// Loads every archive of the index whose image the engine lacks (by reference and ID);
/// returns the references loaded.
pub async fn load(engine: &Engine, dir: &Path) -> Result<Vec<String>, String> {
    let index = read_index(dir)?;
    if index.is_empty() {
        return Err(format!(
            "{} holds no {INDEX}: nothing was saved there (`harness images save --cache-dir {}`)",
            dir.display(),
            dir.display()
        ));
    }
    let mut loaded = Vec::new();
    for entry in &index {
        let present = engine
            .client()
            .inspect_image(&entry.reference)
            .await
            .ok()
            .and_then(|i| i.id)
            .is_some_and(|id| id == entry.id);
        if present {
            continue;
        }
        let path: PathBuf = dir.join(&entry.file);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let options = bollard::query_parameters::ImportImageOptionsBuilder::new()
            .quiet(true)
            .build();
        let mut progress =
            engine
                .client()
                .import_image(options, bollard::body_full(bytes.into()), None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| format!("docker load {}: {e}", path.display()))?;
            if let Some(err) = step.error_detail.and_then(|d| d.message) {
                return Err(format!("docker load {}: {err}", path.display()));
            }
        }
        loaded.push(entry.reference.clone());
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_images_are_found_wherever_a_pod_template_is() {
        let rendered = "---\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: config\n        image: \"quay.io/cilium/cilium:v1.18.4@sha256:aa\"\n      containers:\n      - name: agent\n        image: \"quay.io/cilium/cilium:v1.18.4@sha256:aa\"\n---\nkind: ConfigMap\ndata:\n  image: not-a-container\n---\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - image: quay.io/cilium/certgen:v0.2.1\n";
        assert_eq!(
            images_in_manifests(rendered).unwrap(),
            [
                "quay.io/cilium/certgen:v0.2.1",
                "quay.io/cilium/cilium:v1.18.4@sha256:aa"
            ]
        );
    }
}
