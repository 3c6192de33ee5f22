//! Every error a person reads, as types, each naming the problem and the fix.
//!
//! Nearly a leaf module: it imports nothing from the rest of the crate but the YAML limits (to
//! name them), so profiles, lint, versions and the run all use it without import cycles. Which exit status each kind means is decided once,
//! in `main` (2 for [`Error::Refused`], 3 for [`Error::Run`]).

use std::fmt;
use std::path::PathBuf;

/// Something wrong with what a person gave the harness (flags, files, environment) or a part the
/// host lacks, found before anything was created.
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
        findings: Vec<ValueFinding>,
    },

    #[error("{0}")]
    Filter(#[from] suites::FilterError),

    #[error("the matrix is empty: {0}")]
    EmptyMatrix(String),

    #[error("cannot read {}: {source}; pass a file that exists and you can read", path.display())]
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

    /// A flag, file or host part that cannot work, with what to do instead.
    #[error("{what}; fix: {fix}")]
    Problem { what: String, fix: String },

    /// A recording `harness replay` cannot judge: which file, what is wrong, what to do.
    #[error("{}: {problem}; fix: {fix}", path.display())]
    Recording {
        path: PathBuf,
        problem: String,
        fix: String,
    },

    /// `harness lint` found errors in the files it was given (each printed above).
    #[error("{errors} lint error(s) in {files}; fix them as each finding above says")]
    Lint { errors: usize, files: String },
}

impl InputError {
    pub fn yaml(file: &str, err: &serde_saphyr::Error) -> Self {
        if let Some(breach) = crate::yaml::explain_breach(file, err) {
            return breach;
        }
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let message = err.to_string();
        // saphyr's own text repeats the position; keep only its first line, the problem itself.
        let first = message.lines().next().unwrap_or_default().trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match crate::yaml::original(err) {
            // saphyr's text advises a parser option of its own API.
            serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
                format!("the key '{k}' appears twice in one mapping; keep one of them")
            }
            serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
                "a key appears twice in one mapping; keep one of them".to_string()
            }
            // saphyr's texts for these name functions and options of its own API.
            serde_saphyr::Error::MultipleDocuments { .. } => {
                "holds more than one YAML document (a --- separator); this file takes one: keep the one that was meant".to_string()
            }
            serde_saphyr::Error::BinaryNotUtf8 { .. } => {
                "a !!binary value is not UTF-8 text; write the value as plain text".to_string()
            }
            _ => strip_trailing_position(strip_position(first)).to_string(),
        };
        InputError::MalformedYaml {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }

    pub fn problem(what: impl Into<String>, fix: impl Into<String>) -> Self {
        InputError::Problem {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// `line 1 column 10: unclosed bracket` -> `unclosed bracket`: the position is shown already.
fn strip_position(text: &str) -> &str {
    let Some((head, rest)) = text.split_once(": ") else {
        return text;
    };
    let words: Vec<&str> = head.split(' ').collect();
    match words.as_slice() {
        ["line", l, "column", c]
            if l.bytes().all(|b| b.is_ascii_digit()) && c.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => text,
    }
}

/// `unexpected end of input at line 1, column 1` -> `unexpected end of input`: the position is
/// shown already.
fn strip_trailing_position(text: &str) -> &str {
    let Some((head, tail)) = text.rsplit_once(" at line ") else {
        return text;
    };
    let numbers = tail.replace(", column ", "");
    if !numbers.is_empty() && numbers.bytes().all(|b| b.is_ascii_digit()) {
        head
    } else {
        text
    }
}

/// One error-level lint finding as a bad-input message shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueFinding {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

fn list_findings(findings: &[ValueFinding]) -> String {
    findings
        .iter()
        .map(|f| format!("\n  - {}: {}; fix: {}", f.key, f.problem, f.fix))
        .collect()
}

/// Every problem found with a command's input before anything was created.
#[derive(Debug)]
pub struct Refused(pub Vec<InputError>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(
                    f,
                    "{} problems, nothing was created; fix them all and run again:",
                    all.len()
                )?;
                for p in all {
                    // Keep a multi-line problem readable inside the list.
                    write!(f, "\n  - {}", p.to_string().replace('\n', "\n    "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Refused {}

/// Why a run could not be carried out after it started creating things: provisioning, install,
/// a tool, the report, or the Docker engine failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `up` could not make its cluster; what it made was removed, or kept on request.
    #[error("{message}\n{aftermath}")]
    Provision { message: String, aftermath: String },

    /// Provisioning panicked; the panic unwound through the clean-up.
    #[error(
        "internal error: provisioning panicked: {0}\nwhat it made was removed (check with `harness ls`)"
    )]
    Panicked(String),

    /// The run finished but its report could not be written.
    #[error("{message}; the run's results are lost: pass a --junit path you can write")]
    Report { message: String },

    /// The run finished and its JUnit report was written, but its recording (`--record`) could
    /// not be.
    #[error(
        "{message}; the recording is incomplete (the JUnit report has the results): pass a --record directory you can write"
    )]
    Record { message: String },

    #[error("{message}; check the engine (`docker info`) and run the command again")]
    Docker { message: String },

    #[error("cannot remove everything: {message}; run `{retry}`")]
    Cleanup { message: String, retry: String },

    /// An exec credential plugin gave no credential (`harness exec-credential`, run by kube).
    #[error("{0}")]
    Plugin(String),

    /// A pinned tool could not be downloaded or verified; nothing was installed.
    #[error(
        "{0}; nothing was installed: check the release URL and the network, then run `make tools` again"
    )]
    Tool(String),

    /// Listing, pulling, saving or loading images failed part-way; what was done stays done.
    #[error(
        "{0}; the images and cache entries done before it stay; fix the cause and run the command again"
    )]
    Images(String),

    #[error("cannot {what}: {source}")]
    Os {
        what: &'static str,
        source: std::io::Error,
    },
}

/// A command that did not end with everything passing: refused before it created anything, or
/// unable to carry out its run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Run(#[from] RunError),
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Refused(Refused(vec![e]))
    }
}

impl From<talos_docker::PreflightError> for Error {
    fn from(e: talos_docker::PreflightError) -> Self {
        InputError::from(e).into()
    }
}
