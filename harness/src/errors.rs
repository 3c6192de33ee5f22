//! Every error a person can cause, each with the problem and the fix. These map to exit status 2;
//! anything else is a harness failure (exit 1).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "unknown profile '{given}'; known profiles: {known}. Add your own with --profiles-dir DIR"
    )]
    UnknownProfile { given: String, known: String },

    #[error("{file}:{line}:{column}: {message}")]
    MalformedYaml {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },

    #[error("{file}: {message}")]
    InvalidFile { file: String, message: String },

    #[error("{what} version '{given}' is malformed: {why}; write it like {example}")]
    MalformedVersion {
        what: &'static str,
        given: String,
        why: String,
        example: &'static str,
    },

    #[error("{0}")]
    Unsupported(String),

    #[error("{context}: the Helm values have {} problem(s):{}", findings.len(), list_findings(findings))]
    InvalidValues {
        context: String,
        findings: Vec<crate::profile::lint::Finding>,
    },

    #[error("{0}")]
    Filter(#[from] suites::FilterError),

    #[error("the matrix is empty: {0}")]
    EmptyMatrix(String),

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "{}: is not a directory of profiles; pass a directory holding <name>.yaml files",
        path.display()
    )]
    NotADirectory { path: PathBuf },

    #[error("{0}")]
    Report(String),

    /// A cluster request refused before anything was created (bad input or a missing part).
    #[error(transparent)]
    Cluster(#[from] talos_docker::PreflightError),
}

impl InputError {
    pub fn yaml(file: &str, err: &serde_saphyr::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let message = err.to_string();
        // saphyr's own text repeats the position; keep only its first line, the problem itself.
        let message = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        InputError::MalformedYaml {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

fn list_findings(findings: &[crate::profile::lint::Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("\n  - {}: {}; fix: {}", f.key, f.problem, f.fix))
        .collect()
}
