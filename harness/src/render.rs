//! `plan --render DIR`: the files each cell would install, for review or for `helm template`.

use crate::errors::InputError;
use crate::lb_ipam;
use crate::plan::{CellPlan, Plan};
use crate::profile::overlay::Overlay;
use crate::profile::talos_patch;
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use talos_docker::Ipv4Net;

/// The docker subnet rendered files assume; a real run picks a free one at provisioning.
pub fn example_subnet() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, 5, 0, 0), 24).expect("a network address")
}

fn yaml<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).expect("plain data always serialises")
}

/// The files of one cell, as (relative path, contents).
pub fn cell_files(
    cell: &CellPlan,
    overlay: &Overlay,
) -> Result<Vec<(PathBuf, String)>, InputError> {
    let mut layers = vec![format!(
        "profile {} (seed {})",
        cell.profile.name, cell.profile.seed
    )];
    layers.push("talos-in-docker overlay".into());
    layers.extend(cell.values_files.iter().cloned());
    let values = format!(
        "# Helm values for the cilium chart {}; merged from: {}.\n{}",
        cell.cell.cilium,
        layers.join(" + "),
        yaml(&cell.values)
    );
    let talos = format!(
        "Talos {} (forms from harness/data/releases.yaml)",
        cell.cell.talos
    );
    let gateway = match &cell.gateway_api {
        Some(g) => {
            let note = cell
                .gateway_api_note
                .as_deref()
                .map(|n| format!("# {n}.\n"))
                .unwrap_or_default();
            format!(
                "# Applied with `kubectl apply --server-side` before Cilium is installed.\n{note}version: {}\nchannel: {}\nurl: {}\n",
                g.version,
                g.channel.as_str(),
                g.url()
            )
        }
        None => "# This profile installs no Gateway API CRDs.\nnone: true\n".to_string(),
    };
    let mut files = vec![
        (PathBuf::from("values.yaml"), values),
        (
            PathBuf::from("talos/controlplane.patch.yaml"),
            format!(
                "# talosctl gen config --config-patch-control-plane @this-file; {talos}\n{}",
                talos_patch::yaml(&cell.talos_patch.control_plane)
            ),
        ),
        (
            PathBuf::from("talos/worker.patch.yaml"),
            format!(
                "# talosctl gen config --config-patch-worker @this-file; {talos}\n{}",
                talos_patch::yaml(&cell.talos_patch.worker)
            ),
        ),
        (PathBuf::from("gateway-api-crds.yaml"), gateway),
    ];
    if !cell.namespaces.is_empty() {
        let docs: Vec<String> = cell
            .namespaces
            .iter()
            .map(|n| format!("# {}\n{}", n.why, yaml(&n.manifest())))
            .collect();
        files.push((
            PathBuf::from("namespaces.yaml"),
            format!(
                "# Created (server-side apply) before Cilium is installed.\n{}",
                docs.join("---\n")
            ),
        ));
    }
    if cell.features.l2_announcements {
        let (pool, policy) = lb_ipam::objects(overlay, example_subnet(), &cell.cell.cilium)?;
        files.push((
            PathBuf::from("lb-ipam.yaml"),
            format!(
                "# Shown for the docker subnet {}; a run places the pool in the subnet it provisions.
{}---
{}",
                example_subnet(),
                yaml(&pool),
                yaml(&policy)
            ),
        ));
    }
    Ok(files)
}

/// Write every cell under `dir/<cell id>/`. All files are built before the first is written,
/// so a bad input leaves nothing behind.
pub fn write(plan: &Plan, overlay: &Overlay, dir: &Path) -> Result<usize, InputError> {
    let mut all = Vec::new();
    for cell in &plan.cells {
        for (rel, text) in cell_files(cell, overlay)? {
            all.push((dir.join(&cell.id).join(rel), text));
        }
    }
    for (path, text) in &all {
        let io = |source| InputError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(path, text).map_err(io)?;
    }
    Ok(all.len())
}
