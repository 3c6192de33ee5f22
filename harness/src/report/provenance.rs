//! What exactly ran, so a report can be reproduced and two reports compared knowing what
//! changed: the harness build, and per cell the chart and images with their digests. Written as
//! JUnit properties on every testsuite (the root `<testsuites>` has no properties in the schema).

use quick_junit::Property;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The harness binary that wrote a report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HarnessBuild {
    pub version: String,
    /// The git commit, from `HARNESS_GIT_COMMIT` or `git rev-parse HEAD` at build time
    /// (see build.rs); "unknown" when neither was there.
    pub commit: String,
}

impl HarnessBuild {
    pub fn current() -> HarnessBuild {
        HarnessBuild {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: env!("HARNESS_GIT_COMMIT").to_string(),
        }
    }
}

/// An image as run: the reference given to the runtime and the digest it resolved to, when known.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImagePin {
    /// What the image is for: `client`, `echo`, `dns`, `gateway-echo`.
    pub role: String,
    /// Registry, path and tag, without the digest.
    pub reference: String,
    /// `sha256:...`; `None` when the image is pinned by tag only or could not be inspected.
    pub digest: Option<String>,
}

impl ImagePin {
    /// Split `ref[@digest]` as written in an image pin or a Docker RepoDigest.
    pub fn from_reference(role: &str, reference: &str) -> ImagePin {
        let (name, digest) = match reference.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (reference, None),
        };
        ImagePin {
            role: role.to_string(),
            reference: name.to_string(),
            digest,
        }
    }
}

/// What one cell ran on.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellProvenance {
    /// The Cilium chart version installed (a local chart may differ from the cell's Cilium).
    pub chart_version: Option<String>,
    /// sha256 of the chart archive, when the chart came as a file or the release table has it.
    pub chart_digest: Option<String>,
    pub talos_image: Option<ImagePin>,
    /// The suites' workload images (`client`, `echo`, `dns`, `gateway-echo`).
    pub probe_images: Vec<ImagePin>,
}

/// Everything a run says about itself besides its results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub harness: HarnessBuild,
    /// Keyed by cell id.
    pub cells: BTreeMap<String, CellProvenance>,
    /// Where failed cells' diagnostics go (`<dir>/<cell id>/`); named in the report so the
    /// summary can point at them.
    pub artifacts: Option<PathBuf>,
}

impl Default for Provenance {
    fn default() -> Self {
        Provenance {
            harness: HarnessBuild::current(),
            cells: BTreeMap::new(),
            artifacts: None,
        }
    }
}

const UNKNOWN: &str = "unknown";

/// The provenance properties of one cell. Every key is always written ("unknown" when the run
/// did not know), so a reader can tell "not recorded" from "an older harness".
pub fn properties(
    build: &HarnessBuild,
    cell: Option<&CellProvenance>,
    cilium_version: &str,
    artifacts: Option<PathBuf>,
) -> Vec<Property> {
    let default = CellProvenance::default();
    let cell = cell.unwrap_or(&default);
    let or_unknown = |v: Option<&String>| v.map_or(UNKNOWN.to_string(), Clone::clone);
    let mut props = vec![
        Property::new("harness.version", build.version.as_str()),
        Property::new("harness.commit", build.commit.as_str()),
        Property::new(
            "chart.version",
            cell.chart_version.as_deref().unwrap_or(cilium_version),
        ),
        Property::new("chart.digest", or_unknown(cell.chart_digest.as_ref())),
        Property::new(
            "talos.image",
            cell.talos_image
                .as_ref()
                .map_or(UNKNOWN, |i| i.reference.as_str()),
        ),
        Property::new(
            "talos.image.digest",
            or_unknown(cell.talos_image.as_ref().and_then(|i| i.digest.as_ref())),
        ),
    ];
    for image in &cell.probe_images {
        props.push(Property::new(
            format!("image.{}", image.role),
            image.reference.as_str(),
        ));
        props.push(Property::new(
            format!("image.{}.digest", image.role),
            or_unknown(image.digest.as_ref()),
        ));
    }
    if let Some(dir) = artifacts {
        props.push(Property::new("artifacts", dir.display().to_string()));
    }
    props
}

/// The probe images of a suites run, as pins.
pub fn probe_images(images: &suites::kit::images::Images) -> Vec<ImagePin> {
    [
        ("client", &images.client),
        ("echo", &images.echo),
        ("dns", &images.dns),
        ("gateway-echo", &images.gateway_echo),
    ]
    .into_iter()
    .map(|(role, image)| ImagePin::from_reference(role, &image.to_string()))
    .collect()
}
