//! `harness images`: the images a matrix needs, and the on-disk cache of them (see
//! [`crate::images`]).

use super::args::{ChartArgs, SelectArgs};
use crate::errors::{Error, InputError, Refused, RunError};
use crate::images::{self, Kind};
use crate::run::Verdict;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use talos_docker::spec::TALOS_IMAGE_REPO;

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Every image the selected cells need, with what uses it.
    List(Box<ImagesArgs>),
    /// Pull the images the Docker engine lacks.
    Pull(Box<ImagesArgs>),
    /// Write each image as a `docker save` archive into the cache directory (named by its
    /// registry digest, or image ID for a local image), with an index.
    Save(Box<SaveArgs>),
    /// Load every cached image the Docker engine lacks.
    Load(CacheArg),
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Only these kinds of image; repeatable [default: all].
    #[arg(long = "only", value_enum, value_name = "KIND")]
    pub only: Vec<Kind>,
    /// Talos image repository; the tag is each cell's Talos version.
    #[arg(long, default_value = TALOS_IMAGE_REPO)]
    pub talos_image_repo: String,
    /// The chart `helm template` renders to find its images.
    #[command(flatten)]
    pub chart: ChartArgs,
    /// Bound on each `helm template` and each pull.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct CacheArg {
    /// The cache directory.
    #[arg(
        long = "cache-dir",
        value_name = "DIR",
        env = "HARNESS_IMAGE_CACHE",
        default_value = ".cache/harness-images"
    )]
    pub cache: PathBuf,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[command(flatten)]
    pub images: ImagesArgs,
    #[command(flatten)]
    pub cache: CacheArg,
}

impl ImagesArgs {
    async fn list(&self) -> Result<images::ImageList, Error> {
        let mut problems: Vec<InputError> = Vec::new();
        // The list does not depend on node counts beyond the plan's own.
        let selection = self.select.select(2).map_err(|e| problems.extend(e)).ok();
        if let Err(e) = self.select.check_external_target() {
            problems.push(e);
        }
        let needs_helm = self.only.is_empty() || self.only.contains(&Kind::Cilium);
        if needs_helm {
            match crate::preflight::Host::current().find(&self.chart.helm) {
                Some(helm) => {
                    if let Err(e) = crate::preflight::helm_runs(&helm).await {
                        problems.push(e);
                    }
                }
                None => problems.push(InputError::problem(
                    format!("helm not found ({})", self.chart.helm.display()),
                    "install Helm 3 or pass --helm PATH, or list without it: --only talos --only probe",
                )),
            }
        }
        let (Some(selection), true) = (selection, problems.is_empty()) else {
            return Err(Refused(problems).into());
        };
        let chart = self.chart.source();
        let probes = suites::RunOptions::from_env("images")
            .map_err(|e| {
                Refused(vec![InputError::problem(
                    e.to_string(),
                    "set each HARNESS_IMAGE_* variable to an image with a tag or a digest",
                )])
            })?
            .images;
        images::list(
            &selection.plan,
            &self.only,
            &self.talos_image_repo,
            &probes,
            &self.chart.helm,
            &chart,
            self.timeout,
        )
        .await
        .map_err(|e| RunError::Images(e).into())
    }
}

pub async fn run(command: ImagesCommand) -> Result<Verdict, Error> {
    match command {
        ImagesCommand::List(args) => {
            print!("{}", images::render(&args.list().await?));
            Ok(Verdict::Passed)
        }
        ImagesCommand::Pull(args) => {
            let list = args.list().await?;
            let engine = super::connect().await?;
            let timeouts = talos_docker::spec::Timeouts {
                pull: args.timeout,
                ..Default::default()
            };
            let refs: Vec<String> = list.into_keys().collect();
            images::pull(&engine, &refs, &timeouts)
                .await
                .map_err(|e| RunError::Images(e.join("; ")))?;
            eprintln!("{} image(s) present", refs.len());
            Ok(Verdict::Passed)
        }
        ImagesCommand::Save(args) => {
            if let Err(e) = crate::preflight::output_dir("--cache-dir", &args.cache.cache) {
                return Err(Refused(vec![e]).into());
            }
            let list = args.images.list().await?;
            let engine = super::connect().await?;
            let refs: Vec<String> = list.into_keys().collect();
            let written = images::save(&engine, &refs, &args.cache.cache)
                .await
                .map_err(RunError::Images)?;
            eprintln!(
                "{} image(s) in {} ({written} written now)",
                refs.len(),
                args.cache.cache.display()
            );
            Ok(Verdict::Passed)
        }
        ImagesCommand::Load(args) => {
            if !args.cache.is_dir() {
                return Err(Refused(vec![InputError::problem(
                    format!("--cache-dir {}: is not a directory", args.cache.display()),
                    "pass the directory `harness images save` wrote",
                )])
                .into());
            }
            let engine = super::connect().await?;
            let loaded = images::load(&engine, &args.cache)
                .await
                .map_err(RunError::Images)?;
            eprintln!(
                "loaded {} image(s) from {}",
                loaded.len(),
                args.cache.display()
            );
            Ok(Verdict::Passed)
        }
    }
}
