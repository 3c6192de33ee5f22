//! The version matrix: profiles x Cilium x Talos x Kubernetes, from a file, flags, or the
//! embedded default. Besides versions, the axes take two tokens resolved per profile from the
//! release table: `newest` (the newest release the profile supports) and, for Cilium, `seed`
//! (the release the profile's seed pins, if it pins one).

use crate::errors::InputError;
use crate::profile::lint::{self, Severity};
use crate::profile::{Catalog, Profile};
use crate::releases::{Minor, ReleaseTable};
use crate::version::{CiliumVersion, KubernetesVersion, TalosVersion};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const DEFAULT: &str = include_str!("../../profiles/matrix/default.yaml");

/// A matrix as written. An empty Cilium or Talos axis means `newest`; an empty Kubernetes axis
/// means each Talos release's default, or, where the cell's Cilium is not e2e-tested on that
/// default, the newest Kubernetes both support.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    pub profiles: Vec<String>,
    #[serde(default)]
    pub cilium_versions: Vec<String>,
    #[serde(default)]
    pub talos_versions: Vec<String>,
    #[serde(default)]
    pub kubernetes_versions: Vec<String>,
}

/// Axes given on the command line; each non-empty one replaces the file's.
#[derive(Clone, Debug, Default)]
pub struct AxisFlags {
    pub profiles: Vec<String>,
    pub cilium_versions: Vec<String>,
    pub talos_versions: Vec<String>,
    pub kubernetes_versions: Vec<String>,
}

impl MatrixSpec {
    pub fn parse(file: &str, text: &str) -> Result<Self, InputError> {
        crate::yaml::from_str(text).map_err(|e| InputError::yaml(file, &e))
    }

    /// The matrix `make e2e` runs (`profiles/matrix/default.yaml`).
    pub fn embedded_default() -> Self {
        Self::parse("profiles/matrix/default.yaml", DEFAULT)
            .expect("embedded default matrix is valid")
    }

    /// The matrix from `--matrix FILE` (or the default), with flag axes laid over it.
    pub fn load(file: Option<&Path>, flags: AxisFlags) -> Result<Self, InputError> {
        let mut spec = match file {
            Some(path) => {
                let text = crate::yaml::read(path)?;
                Self::parse(&path.display().to_string(), &text)?
            }
            None => Self::embedded_default(),
        };
        let replace = |axis: &mut Vec<String>, given: Vec<String>| {
            if !given.is_empty() {
                *axis = given;
            }
        };
        replace(&mut spec.profiles, flags.profiles);
        replace(&mut spec.cilium_versions, flags.cilium_versions);
        replace(&mut spec.talos_versions, flags.talos_versions);
        replace(&mut spec.kubernetes_versions, flags.kubernetes_versions);
        Ok(spec)
    }
}

/// One (profile, Cilium, Talos, Kubernetes) combination.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Cell {
    pub profile: String,
    pub cilium: CiliumVersion,
    pub talos: TalosVersion,
    pub kubernetes: KubernetesVersion,
}

impl Cell {
    /// A name safe for file paths and JUnit classnames.
    pub fn id(&self) -> String {
        format!(
            "{}_cilium-{}_talos-{}_k8s-{}",
            self.profile, self.cilium, self.talos, self.kubernetes
        )
    }
}

/// A combination the matrix names but that cannot run, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub cell: Cell,
    pub reason: String,
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

pub const NEWEST: &str = "newest";
pub const SEED: &str = "seed";

/// One entry of a version axis.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry<T> {
    Version(T),
    Newest,
    Seed,
}

fn entries<T: PartialEq>(
    given: &[String],
    parse: fn(&str) -> Result<T, InputError>,
    seed_allowed: bool,
) -> Result<Vec<Entry<T>>, InputError> {
    let all = if given.is_empty() {
        vec![Entry::Newest]
    } else {
        given
            .iter()
            .map(|g| match g.as_str() {
                NEWEST => Ok(Entry::Newest),
                SEED if seed_allowed => Ok(Entry::Seed),
                _ => parse(g).map(Entry::Version),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(dedup(all))
}

/// A Talos axis entry: a version, or `newest`.
pub fn talos_version(entry: &str) -> Result<TalosVersion, InputError> {
    match entry {
        NEWEST => Ok(ReleaseTable::embedded().newest_talos().latest.clone()),
        _ => TalosVersion::parse(entry),
    }
}

/// The newest Cilium release whose chart takes the profile's values without an error.
fn newest_cilium_for(profile: &Profile) -> Result<CiliumVersion, InputError> {
    let table = ReleaseTable::embedded();
    let lines = table.cilium_newest_first();
    // Only what the release itself refuses: contradictions with the cluster are the plan's to
    // report, with the overlay merged.
    let cluster = crate::cluster::ClusterDescription::talos_in_docker(
        &crate::profile::overlay::Overlay::embedded(),
    );
    lines
        .iter()
        .find(|c| {
            !lint::values(&profile.values, &c.latest, &cluster)
                .iter()
                .any(|f| f.severity == Severity::Error && f.basis != lint::Basis::Cluster)
        })
        .map(|c| c.latest.clone())
        .ok_or_else(|| {
            InputError::Unsupported(format!(
                "profile {} has errors on every Cilium release the table knows ({} to {}); see `harness plan --profile {} --cilium-version {}`",
                profile.name,
                lines.last().map(|c| c.minor).unwrap_or(Minor(0, 0)),
                lines[0].minor,
                profile.name,
                lines[0].latest
            ))
        })
}

/// The Kubernetes version a cell runs when the matrix names none.
fn kubernetes_for(
    talos: &TalosVersion,
    cilium: &CiliumVersion,
) -> Result<KubernetesVersion, InputError> {
    let table = ReleaseTable::embedded();
    let (t, c) = (table.talos(talos)?, table.cilium(cilium)?);
    if c.kubernetes_tested.contains(&t.kubernetes.default) {
        return Ok(t.kubernetes.default.clone());
    }
    Ok(table
        .kubernetes_for(t, c)
        .cloned()
        .unwrap_or_else(|| t.kubernetes.default.clone()))
}

/// Expand a matrix into cells, in profile-major order.
/// Every problem with the axes at once (each version malformed or unknown to the release table,
/// each unknown profile), found the way [`expand`] finds the first one.
pub fn axis_problems(spec: &MatrixSpec, catalog: &Catalog) -> Vec<InputError> {
    let mut problems = Vec::new();
    let mut note = |r: Result<(), InputError>| {
        if let Err(e) = r
            && !problems
                .iter()
                .any(|p: &InputError| p.to_string() == e.to_string())
        {
            problems.push(e);
        }
    };
    for name in &spec.profiles {
        note(catalog.get(name).map(drop));
    }
    for v in &spec.cilium_versions {
        if v != NEWEST && v != SEED {
            note(CiliumVersion::parse(v).and_then(|v| v.release().map(drop)));
        }
    }
    for v in &spec.talos_versions {
        if v != NEWEST {
            note(TalosVersion::parse(v).and_then(|v| v.release().map(drop)));
        }
    }
    for v in &spec.kubernetes_versions {
        note(KubernetesVersion::parse(v).map(drop));
    }
    problems
}

pub fn expand(
    spec: &MatrixSpec,
    catalog: &Catalog,
) -> Result<(Vec<Cell>, Vec<Excluded>), InputError> {
    if spec.profiles.is_empty() {
        return Err(InputError::EmptyMatrix(
            "it names no profile; give --profile NAME or a matrix file with `profiles:`".into(),
        ));
    }
    let cilium = entries(&spec.cilium_versions, CiliumVersion::parse, true)?;
    let talos = entries(&spec.talos_versions, TalosVersion::parse, false)?;
    let kubernetes: Vec<KubernetesVersion> = dedup(
        spec.kubernetes_versions
            .iter()
            .map(|k| KubernetesVersion::parse(k))
            .collect::<Result<_, _>>()?,
    );
    let table = ReleaseTable::embedded();
    let talos: Vec<TalosVersion> = dedup(
        talos
            .into_iter()
            .map(|e| match e {
                Entry::Version(v) => v,
                _ => table.newest_talos().latest.clone(),
            })
            .collect(),
    );
    for t in &talos {
        t.release()?;
    }
    for c in &cilium {
        if let Entry::Version(v) = c {
            v.release()?;
        }
    }

    let mut cells = Vec::new();
    let mut excluded = Vec::new();
    for name in dedup(spec.profiles.clone()) {
        let profile = catalog.get(&name)?;
        let mut cilium_axis = Vec::new();
        for entry in &cilium {
            let version = match entry {
                Entry::Version(v) => v.clone(),
                Entry::Newest => newest_cilium_for(profile)?,
                Entry::Seed => match &profile.cilium_version {
                    Some(pin) => {
                        let v = CiliumVersion::parse(pin)?;
                        v.release()?;
                        v
                    }
                    None => continue,
                },
            };
            cilium_axis.push(version);
        }
        for c in dedup(cilium_axis) {
            for t in &talos {
                let k8s_axis = if kubernetes.is_empty() {
                    vec![kubernetes_for(t, &c)?]
                } else {
                    kubernetes.clone()
                };
                for k in k8s_axis {
                    let cell = Cell {
                        profile: name.clone(),
                        cilium: c.clone(),
                        talos: t.clone(),
                        kubernetes: k.clone(),
                    };
                    match t.refuses(&k)? {
                        Some(reason) => excluded.push(Excluded { cell, reason }),
                        None => cells.push(cell),
                    }
                }
            }
        }
    }
    if cells.is_empty() && excluded.is_empty() {
        return Err(InputError::EmptyMatrix(format!(
            "no profile in it ({}) has a seed-pinned Cilium for `seed`; add `newest` or a version",
            dedup(spec.profiles.clone()).join(", ")
        )));
    }
    if cells.is_empty() {
        let reasons: Vec<String> = dedup(excluded.iter().map(|e| e.reason.clone()).collect());
        return Err(InputError::EmptyMatrix(format!(
            "every combination is excluded: {}",
            reasons.join("; ")
        )));
    }
    Ok((cells, excluded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(profiles: &[&str], cilium: &[&str], talos: &[&str], k8s: &[&str]) -> AxisFlags {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        AxisFlags {
            profiles: v(profiles),
            cilium_versions: v(cilium),
            talos_versions: v(talos),
            kubernetes_versions: v(k8s),
        }
    }

    fn ids(cells: &[Cell]) -> Vec<String> {
        cells.iter().map(Cell::id).collect()
    }

    #[test]
    fn default_matrix_is_every_profile_on_the_newest_releases_plus_seed_pins() {
        let spec = MatrixSpec::embedded_default();
        let catalog = Catalog::embedded();
        let (cells, excluded) = expand(&spec, &catalog).unwrap();
        assert!(excluded.is_empty());
        assert!(
            !spec.profiles.contains(&"service-mesh-spire".to_string()),
            "SPIRE is opt-in"
        );
        let table = ReleaseTable::embedded();
        let (cilium, talos) = (&table.newest_cilium().latest, &table.newest_talos().latest);
        for name in &spec.profiles {
            let mine: Vec<&Cell> = cells.iter().filter(|c| &c.profile == name).collect();
            assert_eq!(&mine[0].cilium, cilium, "{name} runs the newest Cilium");
            assert!(
                mine.iter().all(|c| &c.talos == talos),
                "{name} runs the newest Talos"
            );
            let seed = catalog.get(name).unwrap().cilium_version.clone();
            let expected = 1 + usize::from(seed.is_some());
            assert_eq!(mine.len(), expected, "{name}: newest plus its seed's pin");
            if let Some(seed) = seed {
                assert_eq!(mine[1].cilium.to_string(), seed);
            }
        }
        assert_eq!(
            cells.len(),
            spec.profiles.len() + 1,
            "seed 000 alone pins a Cilium"
        );
        assert_eq!(
            cells[0].id(),
            "talos-basic_cilium-1.20.2_talos-v1.14.0_k8s-1.36.3"
        );
    }

    #[test]
    fn nightly_covers_every_maintained_cilium_minor_on_the_two_newest_talos_minors() {
        let text = include_str!("../../profiles/matrix/nightly.yaml");
        let spec = MatrixSpec::parse("nightly.yaml", text).unwrap();
        let table = ReleaseTable::embedded();
        let cilium: Vec<String> = table.cilium.iter().map(|c| c.latest.to_string()).collect();
        assert_eq!(
            spec.cilium_versions, cilium,
            "the newest patch of each minor"
        );
        let talos: Vec<String> = table.talos_newest_first()[..2]
            .iter()
            .rev()
            .map(|t| t.latest.to_string())
            .collect();
        assert_eq!(spec.talos_versions, talos);
        assert!(spec.kubernetes_versions.is_empty());
        let catalog = Catalog::embedded();
        let (cells, excluded) = expand(&spec, &catalog).unwrap();
        assert!(excluded.is_empty());
        assert_eq!(cells.len(), spec.profiles.len() * 3 * 2);
        // Every cell runs a Kubernetes its Cilium is e2e-tested on and its Talos supports.
        for c in &cells {
            let (t, r) = (c.talos.release().unwrap(), c.cilium.release().unwrap());
            assert!(t.kubernetes.contains(&c.kubernetes), "{}", c.id());
            assert!(r.kubernetes_tested.contains(&c.kubernetes), "{}", c.id());
        }
        let by_pair = |cilium: &str, talos: &str| {
            cells
                .iter()
                .find(|c| c.cilium.to_string() == cilium && c.talos.to_string() == talos)
                .unwrap()
                .kubernetes
                .to_string()
        };
        assert_eq!(
            by_pair("1.20.2", "v1.13.9"),
            "1.36.3",
            "the Talos default fits"
        );
        assert_eq!(
            by_pair("1.20.2", "v1.14.0"),
            "1.36.3",
            "1.37 is past Cilium 1.20's window"
        );
        assert_eq!(by_pair("1.18.14", "v1.14.0"), "1.33.6");
        assert_eq!(by_pair("1.19.8", "v1.13.9"), "1.35.4");
    }

    #[test]
    fn flags_replace_axes_and_kubernetes_defaults_follow_talos() {
        let spec = MatrixSpec::load(
            None,
            flags(&["k8s-local"], &["1.18.4"], &["v1.12.11", "v1.11.5"], &[]),
        )
        .unwrap();
        assert!(spec.kubernetes_versions.is_empty());
        let (cells, _) = expand(&spec, &Catalog::embedded()).unwrap();
        let k8s: Vec<String> = cells.iter().map(|c| c.kubernetes.to_string()).collect();
        // Talos v1.12 defaults to 1.35.4, past Cilium 1.18's tested 1.33: the newest both take.
        assert_eq!(k8s, vec!["1.33.6", "1.33.6"]);
        let spec =
            MatrixSpec::load(None, flags(&["k8s-local"], &["1.20.2"], &["v1.13.9"], &[])).unwrap();
        assert_eq!(
            ids(&expand(&spec, &Catalog::embedded()).unwrap().0),
            ["k8s-local_cilium-1.20.2_talos-v1.13.9_k8s-1.36.3"]
        );
    }

    #[test]
    fn tokens_resolve_per_profile() {
        let spec = MatrixSpec::load(
            None,
            flags(
                &["talos-basic", "native-routing-gateway"],
                &["seed"],
                &["newest"],
                &[],
            ),
        )
        .unwrap();
        let (cells, _) = expand(&spec, &Catalog::embedded()).unwrap();
        assert_eq!(
            ids(&cells),
            ["native-routing-gateway_cilium-1.18.4_talos-v1.14.0_k8s-1.33.6"],
            "talos-basic's seed pins no Cilium"
        );
        let spec = MatrixSpec::load(None, flags(&["talos-basic"], &["seed"], &[], &[])).unwrap();
        let err = expand(&spec, &Catalog::embedded()).unwrap_err().to_string();
        assert!(
            err.contains("(talos-basic) has a seed-pinned Cilium"),
            "{err}"
        );
        let err = MatrixSpec::load(None, flags(&["talos-basic"], &[], &["seed"], &[]))
            .map(|s| expand(&s, &Catalog::embedded()))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("Talos version 'seed' is malformed"), "{err}");
    }

    #[test]
    fn unsupported_combinations_are_excluded_with_a_reason() {
        let spec = MatrixSpec::load(
            None,
            flags(
                &["k8s-local"],
                &["1.18.4"],
                &["v1.11.5"],
                &["1.34.1", "1.35.0"],
            ),
        )
        .unwrap();
        let (cells, excluded) = expand(&spec, &Catalog::embedded()).unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(
            excluded[0].reason,
            "Talos v1.11.5 supports Kubernetes 1.29 to 1.34, not 1.35.0"
        );
    }

    #[test]
    fn all_excluded_is_an_error() {
        let spec =
            MatrixSpec::load(None, flags(&["k8s-local"], &[], &["v1.11.5"], &["1.36.0"])).unwrap();
        let err = expand(&spec, &Catalog::embedded()).unwrap_err().to_string();
        assert!(err.contains("every combination is excluded"), "{err}");
    }

    #[test]
    fn malformed_and_unknown_inputs_fail() {
        let spec = MatrixSpec::load(None, flags(&[], &["1.18"], &[], &[])).unwrap();
        assert!(matches!(
            expand(&spec, &Catalog::embedded()),
            Err(InputError::MalformedVersion { .. })
        ));
        let spec = MatrixSpec::load(None, flags(&["nope"], &[], &[], &[])).unwrap();
        assert!(matches!(
            expand(&spec, &Catalog::embedded()),
            Err(InputError::UnknownProfile { .. })
        ));
        let err = MatrixSpec::parse("m.yaml", "profiles: [a]\ncilium: [1]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.yaml:2:1:"), "{err}");
    }
}
