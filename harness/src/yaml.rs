//! Every YAML file a person gives the harness (profiles, matrices, values, patches, manifests,
//! kubeconfigs) is read here, with explicit limits: a size cap checked before reading, and
//! serde-saphyr's budget (nodes, aliases, depth, documents) so an alias bomb stops at once.
//! A breach is a message naming the limit and what to do about the file, never a debug struct.

use crate::errors::InputError;
use serde::de::DeserializeOwned;
use serde_saphyr::budget::{Budget, BudgetBreach};
use std::path::Path;

/// The largest file read: Cilium's own `values.yaml` is about 150 KB, a Gateway API bundle
/// about 1 MB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Aliases (`*name`) per file: values files rarely use any.
pub const MAX_ALIASES: usize = 1_000;
/// Nodes per file (mappings, sequences, scalars), aliases expanded: Cilium's own values.yaml
/// has about 5,000.
pub const MAX_NODES: usize = 50_000;
/// Nesting depth.
pub const MAX_DEPTH: usize = 64;
/// Documents per file.
pub const MAX_DOCUMENTS: usize = 512;

fn options() -> serde_saphyr::Options {
    let mut budget = Budget::default();
    budget.max_aliases = MAX_ALIASES;
    budget.max_nodes = MAX_NODES;
    budget.max_depth = MAX_DEPTH;
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    serde_saphyr::options! { budget: Some(budget) }
}

/// One document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    check_size(text)?;
    serde_saphyr::from_str_with_options(text, options())
}

/// Every document (`---`-separated).
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    check_size(text)?;
    serde_saphyr::from_multiple_with_options(text, options())
}

fn check_size(text: &str) -> Result<(), serde_saphyr::Error> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(serde_saphyr::Error::Budget {
            breach: BudgetBreach::InputBytes {
                input_bytes: text.len(),
            },
            location: serde_saphyr::Location::UNKNOWN,
        });
    }
    Ok(())
}

/// The file's text, refused before reading when it is larger than [`MAX_FILE_BYTES`].
pub fn read(path: &Path) -> Result<String, InputError> {
    let read_error = |source| InputError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.is_dir() {
        return Err(InputError::problem(
            format!("{}: is a directory, not a YAML file", path.display()),
            "pass the file itself",
        ));
    }
    if !meta.is_file() {
        // A device or a pipe (`/dev/zero`, `<(...)`) may never end: read at most the limit.
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(read_error)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(InputError::problem(
                format!(
                    "{}: is not a regular file and gives more than the {} MiB the harness reads from one YAML file",
                    path.display(),
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
                "pass a regular file",
            ));
        }
        return String::from_utf8(bytes).map_err(|_| not_text(path));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(&path.display().to_string(), meta.len()));
    }
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(not_text(path)),
        other => other.map_err(read_error),
    }
}

fn not_text(path: &Path) -> InputError {
    InputError::problem(
        format!("{}: is not UTF-8 text, so not YAML", path.display()),
        "pass the YAML file that was meant (saved as UTF-8)",
    )
}

fn too_large(file: &str, bytes: u64) -> InputError {
    InputError::problem(
        format!(
            "{file}: is {} MiB, over the {} MiB the harness reads from one YAML file",
            bytes.div_ceil(1024 * 1024),
            MAX_FILE_BYTES / (1024 * 1024)
        ),
        "pass the file that was meant (values, a profile, a matrix and manifests are far smaller), or split it",
    )
}

/// The error itself, without the snippet and alias wrappers saphyr puts around it.
pub fn original(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = err
    {
        err = error;
    }
    err
}

/// A budget breach as a problem and its fix; `None` for any other error.
pub fn explain_breach(file: &str, err: &serde_saphyr::Error) -> Option<InputError> {
    let serde_saphyr::Error::Budget { breach, .. } = original(err) else {
        return None;
    };
    let (what, fix) = match breach {
        BudgetBreach::InputBytes { input_bytes } => {
            return Some(too_large(file, *input_bytes as u64));
        }
        BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. } => (
            format!(
                "uses more than {MAX_ALIASES} aliases (*name), or far more aliases than anchors (an alias bomb)"
            ),
            "write the repeated parts out, or use fewer anchors and aliases",
        ),
        BudgetBreach::Nodes { .. }
        | BudgetBreach::Events { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => (
            format!("holds more than {MAX_NODES} values once its aliases are expanded"),
            "pass the file that was meant, or expand fewer aliases (each *name copies its anchor)",
        ),
        BudgetBreach::Depth { .. }
        | BudgetBreach::InclusionDepth { .. }
        | BudgetBreach::PropertyExpansionDepth { .. } => (
            format!("nests deeper than {MAX_DEPTH} levels"),
            "flatten it; no harness input nests that deep",
        ),
        BudgetBreach::Documents { .. } => (
            format!("has more than {MAX_DOCUMENTS} documents (--- separators)"),
            "split it into several files",
        ),
        _ => (
            "is beyond what the harness reads from one YAML file".to_string(),
            "pass the file that was meant, or split it",
        ),
    };
    Some(InputError::problem(format!("{file}: {what}"), fix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        let err = from_str::<serde_json::Value>(text).unwrap_err();
        InputError::yaml("f.yaml", &err).to_string()
    }

    #[test]
    fn an_alias_bomb_names_the_limit_and_the_fix() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = refused(&bomb);
        assert!(e.starts_with("f.yaml: "), "{e}");
        assert!(e.contains("aliases") || e.contains("values once"), "{e}");
        assert!(e.contains("fix: "), "{e}");
        assert!(!e.contains("Nodes {") && !e.contains("breach"), "{e}");
    }

    #[test]
    fn a_huge_text_is_refused_by_size() {
        let big = "k: v\n".repeat((MAX_FILE_BYTES as usize / 5) + 10);
        let e = refused(&big);
        assert!(e.contains("MiB, over the 8 MiB"), "{e}");
    }

    #[test]
    fn deep_nesting_names_the_depth() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let e = refused(&deep);
        assert!(
            e.contains("nests deeper than 64") || e.contains("f.yaml"),
            "{e}"
        );
    }

    #[test]
    fn a_large_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("big.yaml: is 9 MiB"), "{e}");
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
