//! The profile catalog: the embedded profiles, plus any from `--profiles-dir`, which add to or
//! override them by name.

use super::Profile;
use crate::errors::InputError;
use std::collections::BTreeMap;
use std::path::Path;

/// The profiles shipped in the binary, as (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "talos-basic.yaml",
        include_str!("../../../profiles/talos-basic.yaml"),
    ),
    (
        "talos-gateway-api.yaml",
        include_str!("../../../profiles/talos-gateway-api.yaml"),
    ),
    (
        "talos-hubble.yaml",
        include_str!("../../../profiles/talos-hubble.yaml"),
    ),
    (
        "native-routing-gateway.yaml",
        include_str!("../../../profiles/native-routing-gateway.yaml"),
    ),
    (
        "service-mesh-wireguard.yaml",
        include_str!("../../../profiles/service-mesh-wireguard.yaml"),
    ),
    (
        "service-mesh-spire.yaml",
        include_str!("../../../profiles/service-mesh-spire.yaml"),
    ),
    (
        "k8s-local.yaml",
        include_str!("../../../profiles/k8s-local.yaml"),
    ),
    (
        "vxlan-wireguard-hostfw.yaml",
        include_str!("../../../profiles/vxlan-wireguard-hostfw.yaml"),
    ),
];

#[derive(Clone, Debug)]
pub struct Catalog {
    profiles: BTreeMap<String, Profile>,
}

/// Parse one profile; `file` names it in messages.
pub fn parse_profile(file: &str, text: &str) -> Result<Profile, InputError> {
    let profile: Profile = crate::yaml::from_str(text).map_err(|e| InputError::yaml(file, &e))?;
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if profile.name != stem {
        return Err(InputError::InvalidFile {
            file: file.to_string(),
            message: format!(
                "the profile is named '{}' but its file is '{stem}.yaml'; rename one so they match",
                profile.name
            ),
        });
    }
    if !profile.values.is_object() {
        return Err(InputError::InvalidFile {
            file: file.to_string(),
            message: "`values` must be a map of Helm values".into(),
        });
    }
    Ok(profile)
}

impl Catalog {
    pub fn embedded() -> Self {
        let profiles = EMBEDDED
            .iter()
            .map(|(file, text)| {
                let p = parse_profile(&format!("profiles/{file}"), text)
                    .unwrap_or_else(|e| panic!("embedded profile is invalid: {e}"));
                (p.name.clone(), p)
            })
            .collect();
        Catalog { profiles }
    }

    /// The embedded catalog with `dir`'s `*.yaml` profiles added or overriding by name.
    pub fn with_dir(dir: Option<&Path>) -> Result<Self, InputError> {
        let mut catalog = Self::embedded();
        let Some(dir) = dir else {
            return Ok(catalog);
        };
        if !dir.is_dir() {
            return Err(InputError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let entries = std::fs::read_dir(dir).map_err(|source| InputError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = crate::yaml::read(&path)?;
            let p = parse_profile(&path.display().to_string(), &text)?;
            catalog.profiles.insert(p.name.clone(), p);
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Result<&Profile, InputError> {
        self.profiles
            .get(name)
            .ok_or_else(|| InputError::UnknownProfile {
                given: name.to_string(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_profiles_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn every_profile_names_an_existing_seed() {
        // The seeds are listed, with their sums, in the test-data manifest; that list is checked
        // against shared/seeds wherever shared/ is present (upstream/tests/manifest.rs).
        for p in Catalog::embedded().profiles() {
            assert!(
                upstream::testdata::entry(&format!("seeds/{}", p.source.seed)).is_some(),
                "{} cites a seed that does not exist: {}",
                p.name,
                p.source.seed
            );
        }
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let err = Catalog::embedded()
            .get("talos-basics")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown profile 'talos-basics'; known profiles: k8s-local, "),
            "{err}"
        );
        assert!(err.contains("talos-basic,"), "{err}");
    }

    #[test]
    fn malformed_yaml_gives_file_line_and_column() {
        let text = "name: x\ndescription: d\nsource:\n  seed: s\n  section: [unclosed\n";
        let err = parse_profile("x.yaml", text).unwrap_err();
        match err {
            InputError::MalformedYaml {
                file, line, column, ..
            } => {
                assert_eq!(file, "x.yaml");
                assert!(line >= 5, "line {line}");
                assert!(column >= 1);
            }
            other => panic!("expected a YAML error, got {other}"),
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_position() {
        let text = "name: x\ndescription: d\nsource: {seed: s, section: t}\ncilium_version: 1.18.4\ngateway_api: none\nvalues: {}\nvalus: {}\n";
        let err = parse_profile("x.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml:7:1:"), "{err}");
        assert!(err.contains("valus"), "{err}");
    }

    #[test]
    fn a_profiles_dir_overrides_by_name_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = EMBEDDED[0].1.replace("Basic Cilium", "Overridden");
        std::fs::write(dir.path().join(EMBEDDED[0].0), &text).unwrap();
        text = text.replace("name: talos-basic", "name: mine");
        std::fs::write(dir.path().join("mine.yaml"), &text).unwrap();
        let c = Catalog::with_dir(Some(dir.path())).unwrap();
        assert!(
            c.get("talos-basic")
                .unwrap()
                .description
                .starts_with("Overridden")
        );
        assert!(c.get("mine").is_ok());
        assert_eq!(c.names().count(), EMBEDDED.len() + 1);
    }
}
