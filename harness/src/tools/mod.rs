//! `harness tools install` (`make tools`): the pinned helm and the talosctl of each Talos
//! release to run, for this host, under a directory in the project (`.tools/`). Each download is
//! checked against the checksum file its release publishes and against the sum in `pins.yaml`
//! where one is recorded; nothing is put in place until every tool has passed, and `tools.lock`
//! records what was verified. `make e2e` puts `.tools/bin` first on PATH.

mod archive;
pub mod pins;

use crate::errors::InputError;
use crate::matrix::{AxisFlags, MatrixSpec};
use crate::version::TalosVersion;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use upstream::{Client, Sha256};

#[derive(Subcommand, Debug)]
pub enum ToolsCommand {
    /// Download and verify the pinned helm and talosctl for this host into --dir.
    Install(InstallArgs),
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Where the tools go; `bin/` inside it is what `make e2e` puts on PATH.
    #[arg(long, default_value = ".tools")]
    pub dir: PathBuf,
    /// Talos versions whose talosctl to install; repeatable. Default: the default matrix's.
    #[arg(long = "talos-version", value_name = "V")]
    pub talos_versions: Vec<String>,
    /// The helm release to install (its binary sum is checked against pins.yaml when recorded).
    #[arg(long, default_value_t = pins::pins().helm.version.clone())]
    pub helm_version: String,
    /// Where talosctl releases are published (for a mirror): <url>/<version>/talosctl-<os>-<arch>.
    #[arg(
        long,
        env = "HARNESS_TALOS_RELEASES_URL",
        default_value = "https://github.com/siderolabs/talos/releases/download"
    )]
    pub talos_releases_url: String,
    /// Where helm releases are published (for a mirror): <url>/helm-<version>-<os>-<arch>.tar.gz.
    #[arg(
        long,
        env = "HARNESS_HELM_RELEASES_URL",
        default_value = "https://get.helm.sh"
    )]
    pub helm_releases_url: String,
    /// Bound on each download.
    #[arg(long, default_value = "10m", value_parser = crate::cli::args::parse_duration)]
    pub timeout: Duration,
}

/// A download or verification that failed: nothing is installed and the command exits 3.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Refused(crate::errors::Refused),
    #[error(transparent)]
    Download(#[from] upstream::Error),
    #[error("{0}")]
    Verify(String),
}

/// The host as release assets name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    pub fn host() -> Result<Platform, InputError> {
        let os = match std::env::consts::OS {
            "linux" => "linux",
            "macos" => "darwin",
            other => {
                return Err(InputError::Unsupported(format!(
                    "tools install supports linux and darwin hosts, not {other}; install helm and talosctl yourself and put them on PATH"
                )));
            }
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => {
                return Err(InputError::Unsupported(format!(
                    "tools install supports amd64 and arm64 hosts, not {other}; install helm and talosctl yourself and put them on PATH"
                )));
            }
        };
        Ok(Platform { os, arch })
    }

    pub fn key(&self) -> String {
        format!("{}-{}", self.os, self.arch)
    }
}

/// What `tools.lock` records of one installed tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    pub name: String,
    pub version: String,
    pub platform: String,
    /// Relative to the tools directory.
    pub path: String,
    pub url: String,
    /// The sum of what was downloaded (the tarball for helm), as the checksum file lists it.
    pub sha256: String,
    pub checksum_file: String,
    /// The installed binary's sum.
    pub binary_sha256: String,
    /// Whether pins.yaml recorded a sum that was checked as well.
    pub pinned: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub tools: Vec<Locked>,
}

pub const LOCK_FILE: &str = "tools.lock";

/// A verified binary waiting in a temporary file beside its destination.
struct Staged {
    file: tempfile::NamedTempFile,
    dest: PathBuf,
    locked: Locked,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ToolsError + '_ {
    move |e| ToolsError::Verify(format!("{}: {e}", path.display()))
}

fn talos_versions(args: &InstallArgs) -> Result<Vec<TalosVersion>, InputError> {
    let given = if args.talos_versions.is_empty() {
        MatrixSpec::load(None, AxisFlags::default())?.talos_versions
    } else {
        args.talos_versions.clone()
    };
    let mut out = given
        .iter()
        .map(|v| crate::matrix::talos_version(v))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn stage_talosctl(
    client: &Client,
    args: &InstallArgs,
    staging: &Path,
    platform: Platform,
    version: &TalosVersion,
) -> Result<Staged, ToolsError> {
    let base = format!(
        "{}/{version}",
        args.talos_releases_url.trim_end_matches('/')
    );
    let asset = format!("talosctl-{}", platform.key());
    let listing_url = format!("{base}/sha256sum.txt");
    let listing = client.text(&listing_url, 1 << 20)?;
    let published = Sha256::from_listing(&listing, &asset)
        .ok_or_else(|| ToolsError::Verify(format!("{listing_url} lists no sum for {asset}")))?;
    let pinned = pins::pins().talosctl_sum(&version.to_string(), &platform);
    if let Some(pin) = pinned
        && pin != published
    {
        return Err(ToolsError::Verify(format!(
            "{listing_url} gives {asset} the sha256 {published}, but pins.yaml records {pin}; the release was re-published or the checksum file is wrong: nothing was installed"
        )));
    }
    let url = format!("{base}/{asset}");
    let (file, actual) = client.to_temp(&url, staging)?;
    if actual != published {
        return Err(ToolsError::Verify(format!(
            "{url} has sha256 {actual}, but {listing_url} lists {published}: a corrupted or replaced download; nothing was installed"
        )));
    }
    Ok(Staged {
        dest: args
            .dir
            .join("talosctl")
            .join(version.to_string())
            .join("talosctl"),
        locked: Locked {
            name: "talosctl".into(),
            version: version.to_string(),
            platform: platform.key(),
            path: format!("talosctl/{version}/talosctl"),
            url,
            sha256: actual.to_string(),
            checksum_file: listing_url,
            binary_sha256: actual.to_string(),
            pinned: pinned.is_some(),
        },
        file,
    })
}

fn stage_helm(
    client: &Client,
    args: &InstallArgs,
    staging: &Path,
    platform: Platform,
) -> Result<Staged, ToolsError> {
    let version = &args.helm_version;
    let tarball = format!("helm-{version}-{}.tar.gz", platform.key());
    let url = format!("{}/{tarball}", args.helm_releases_url.trim_end_matches('/'));
    let listing_url = format!("{url}.sha256sum");
    let listing = client.text(&listing_url, 1 << 16)?;
    let published = Sha256::from_listing(&listing, &tarball)
        .ok_or_else(|| ToolsError::Verify(format!("{listing_url} lists no sum for {tarball}")))?;
    let (archive, actual) = client.to_temp(&url, staging)?;
    if actual != published {
        return Err(ToolsError::Verify(format!(
            "{url} has sha256 {actual}, but {listing_url} lists {published}: a corrupted or replaced download; nothing was installed"
        )));
    }
    let member = format!("{}/helm", platform.key());
    let (binary, binary_sum) = archive::extract(archive.path(), &member, staging)
        .map_err(|e| ToolsError::Verify(format!("{url}: {e}")))?;
    let pinned = pins::pins().helm_binary_sum(version, &platform);
    if let Some(pin) = pinned
        && pin != binary_sum
    {
        return Err(ToolsError::Verify(format!(
            "the helm binary in {url} has sha256 {binary_sum}, but pins.yaml records {pin}: nothing was installed"
        )));
    }
    Ok(Staged {
        file: binary,
        dest: args.dir.join("helm").join(version).join("helm"),
        locked: Locked {
            name: "helm".into(),
            version: version.clone(),
            platform: platform.key(),
            path: format!("helm/{version}/helm"),
            url,
            sha256: actual.to_string(),
            checksum_file: listing_url,
            binary_sha256: binary_sum.to_string(),
            pinned: pinned.is_some(),
        },
    })
}

/// Point `link` at `target` by renaming a fresh link over it, so it never dangles half-made.
fn replace_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    let dir = link.parent().expect("links live in bin/");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.new",
        link.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// Install everything or nothing; returns the lock that was written.
pub fn install(args: &InstallArgs) -> Result<Lock, ToolsError> {
    let (platform, talos) = checked(args)?;
    let client = Client::new(args.timeout)?;
    let created = !args.dir.exists();
    std::fs::create_dir_all(&args.dir).map_err(io(&args.dir))?;
    let staged = stage_all(&client, args, platform, &talos);
    let result = staged.and_then(|(staging, staged)| put_in_place(args, staging, staged));
    if result.is_err() && created {
        // Only removes it if it is still empty, i.e. this run put nothing there.
        let _ = std::fs::remove_dir(&args.dir);
    }
    result
}

/// Every flag checked before the first request, every problem reported at once.
fn checked(args: &InstallArgs) -> Result<(Platform, Vec<TalosVersion>), ToolsError> {
    let mut problems = Vec::new();
    let platform = Platform::host().map_err(|e| problems.push(e)).ok();
    let talos = talos_versions(args).map_err(|e| problems.push(e)).ok();
    let v = args
        .helm_version
        .strip_prefix('v')
        .unwrap_or(&args.helm_version);
    if !args.helm_version.starts_with('v') || semver::Version::parse(v).is_err() {
        problems.push(InputError::MalformedVersion {
            what: "helm",
            given: args.helm_version.clone(),
            why: "it needs v and major.minor.patch, as helm's releases are named".into(),
            example: "v3.19.0",
        });
    }
    for (flag, url) in [
        ("--talos-releases-url", &args.talos_releases_url),
        ("--helm-releases-url", &args.helm_releases_url),
    ] {
        if let Err(e) = crate::preflight::http_url(flag, url) {
            problems.push(e);
        }
    }
    if let Err(e) = crate::preflight::output_dir("--dir", &args.dir) {
        problems.push(e);
    }
    match (platform, talos) {
        (Some(p), Some(t)) if problems.is_empty() => Ok((p, t)),
        _ => Err(ToolsError::Refused(crate::errors::Refused(problems))),
    }
}

/// Everything is downloaded and verified into a staging directory (removed when dropped)
/// before anything is put in place.
fn stage_all(
    client: &Client,
    args: &InstallArgs,
    platform: Platform,
    talos: &[TalosVersion],
) -> Result<(tempfile::TempDir, Vec<Staged>), ToolsError> {
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&args.dir)
        .map_err(io(&args.dir))?;
    let mut staged = Vec::new();
    for v in talos {
        staged.push(stage_talosctl(client, args, staging.path(), platform, v)?);
    }
    staged.push(stage_helm(client, args, staging.path(), platform)?);
    Ok((staging, staged))
}

fn put_in_place(
    args: &InstallArgs,
    _staging: tempfile::TempDir,
    staged: Vec<Staged>,
) -> Result<Lock, ToolsError> {
    let mut lock = Lock::default();
    for s in staged {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(s.file.path(), perms).map_err(io(s.file.path()))?;
        let parent = s.dest.parent().expect("a tool path has a directory");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        s.file
            .persist(&s.dest)
            .map_err(|e| ToolsError::Verify(format!("{}: {}", s.dest.display(), e.error)))?;
        lock.tools.push(s.locked);
    }
    let bin = args.dir.join("bin");
    let newest_talosctl = lock.tools.iter().rfind(|t| t.name == "talosctl");
    let helm = lock.tools.iter().find(|t| t.name == "helm");
    for (name, tool) in [("talosctl", newest_talosctl), ("helm", helm)] {
        if let Some(t) = tool {
            let link = bin.join(name);
            replace_symlink(&Path::new("..").join(&t.path), &link).map_err(io(&link))?;
        }
    }
    let lock_path = args.dir.join(LOCK_FILE);
    let text = serde_json::to_string_pretty(&lock).expect("plain data");
    let mut tmp = tempfile::NamedTempFile::new_in(&args.dir).map_err(io(&args.dir))?;
    std::io::Write::write_all(&mut tmp, format!("{text}\n").as_bytes()).map_err(io(&lock_path))?;
    tmp.persist(&lock_path)
        .map_err(|e| ToolsError::Verify(format!("{}: {}", lock_path.display(), e.error)))?;
    Ok(lock)
}

/// The `tools` command: bad input is refused (exit 2); a failed download or check is a run that
/// could not be carried out (exit 3), and installs nothing.
pub fn run(command: ToolsCommand) -> Result<crate::run::Verdict, crate::errors::Error> {
    match command {
        ToolsCommand::Install(args) => match install(&args) {
            Ok(lock) => {
                for t in &lock.tools {
                    let pin = if t.pinned { " and pins.yaml" } else { "" };
                    eprintln!(
                        "installed {} {} ({}) at {}: sha256 {} verified against {}{pin}",
                        t.name,
                        t.version,
                        t.platform,
                        args.dir.join(&t.path).display(),
                        t.sha256,
                        t.checksum_file
                    );
                }
                eprintln!(
                    "recorded in {}; `make e2e` puts {} first on PATH",
                    args.dir.join(LOCK_FILE).display(),
                    args.dir.join("bin").display()
                );
                Ok(crate::run::Verdict::Passed)
            }
            Err(ToolsError::Input(e)) => Err(e.into()),
            Err(ToolsError::Refused(r)) => Err(r.into()),
            Err(e) => Err(crate::errors::RunError::Tool(e.to_string()).into()),
        },
    }
}
