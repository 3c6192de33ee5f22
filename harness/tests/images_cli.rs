//! `harness images`: the list from the real chart (pinned Helm 3, the stored charts), the
//! cache's save/load round trip with the stand-in image on the real Docker engine, and `pull`
//! from a real registry on loopback (Debian's docker-registry).

#[path = "../../talos-docker/tests/common/mod.rs"]
mod common;
#[path = "support/helm.rs"]
mod helm_pin;
#[path = "support/registry.rs"]
mod registry;

use futures::StreamExt;
use std::path::Path;
use std::process::{Command, Output};
use talos_docker::bollard;
use upstream::testdata;

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("images")
        .args(args)
        .env_remove("HARNESS_IMAGE_CACHE")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs `f` on a runtime with the engine.
fn with_engine<T: Send + 'static>(
    f: impl FnOnce(talos_docker::docker::Engine) -> futures::future::BoxFuture<'static, T>
    + Send
    + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let engine =
                    talos_docker::docker::Engine::connect(std::time::Duration::from_secs(10))
                        .await
                        .unwrap();
                f(engine).await
            })
    })
    .join()
    .unwrap()
}

fn tag(source: &str, repo: &str, tag: &str) {
    let (source, repo, tag) = (source.to_string(), repo.to_string(), tag.to_string());
    with_engine(move |e| {
        Box::pin(async move {
            let options = bollard::query_parameters::TagImageOptionsBuilder::new()
                .repo(&repo)
                .tag(&tag)
                .build();
            e.client().tag_image(&source, Some(options)).await.unwrap();
        })
    })
}

/// `docker push` of a tagged image to its registry.
fn push(image: &str) {
    let image = image.to_string();
    with_engine(move |e| {
        Box::pin(async move {
            let (repo, tag) = image.rsplit_once(':').unwrap();
            let options = bollard::query_parameters::PushImageOptionsBuilder::new()
                .tag(tag)
                .build();
            let mut push = e.client().push_image(repo, Some(options), None);
            while let Some(step) = push.next().await {
                let step = step.unwrap();
                assert!(step.error_detail.is_none(), "{step:?}");
            }
        })
    });
}

fn remove(image: &str) {
    let image = image.to_string();
    with_engine(move |e| {
        Box::pin(async move {
            let _ = e
                .client()
                .remove_image(
                    &image,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await;
        })
    })
}

fn image_id(image: &str) -> Option<String> {
    let image = image.to_string();
    with_engine(move |e| {
        Box::pin(async move {
            e.client()
                .inspect_image(&image)
                .await
                .ok()
                .and_then(|i| i.id)
        })
    })
}

/// A registry on loopback holding the stand-in image (absent from the engine under that name),
/// and its repository there; `None` when the test skips.
fn standin_in_registry(test: &str) -> Option<(registry::LocalRegistry, String)> {
    if !common::docker_or_skip(test) {
        return None;
    }
    let reg = registry::LocalRegistry::start_or_skip(test)?;
    let repo = format!("{}/harness-test/talos-standin", reg.host);
    let image = format!("{repo}:v1.11.5");
    tag(&common::standin("v1.11.5"), &repo, "v1.11.5");
    push(&image);
    remove(&image);
    assert_eq!(image_id(&image), None);
    Some((reg, repo))
}

/// The chart's own images for the cell's values: a profile with Hubble relay lists its image,
/// one without does not; each image carries the digest the chart pins.
#[test]
fn the_list_comes_from_the_chart_rendered_with_each_cells_values() {
    let Some(helm) = helm_pin::need(helm_pin::pinned_helm(3)) else {
        return;
    };
    let Some(chart) =
        helm_pin::need(testdata::try_path("charts/cilium-1.18.4.tgz").map_err(|e| e.to_string()))
    else {
        return;
    };
    let list = |profile: &str| {
        ok(&harness(&[
            "list",
            "--profile",
            profile,
            "--cilium-version",
            "1.18.4",
            "--talos-version",
            "v1.11.5",
            "--no-external-target",
            "--helm",
            helm.path.to_str().unwrap(),
            "--chart",
            chart.to_str().unwrap(),
        ]))
    };
    let basic = list("talos-basic");
    let hubble = list("talos-hubble");
    for text in [&basic, &hubble] {
        assert!(text.contains("ghcr.io/siderolabs/talos:v1.11.5"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("quay.io/cilium/cilium:v1.18.4@sha256:")
                    && l.ends_with("cilium 1.18.4")),
            "{text}"
        );
        assert!(text.contains("quay.io/cilium/operator-generic:v1.18.4@sha256:"));
        assert!(text.contains("quay.io/cilium/alpine-curl:"), "{text}");
    }
    assert!(!basic.contains("hubble-relay"), "{basic}");
    assert!(
        hubble.contains("quay.io/cilium/hubble-relay:v1.18.4@sha256:"),
        "{hubble}"
    );
    // Only what was asked for, and no helm needed for it.
    let talos_only = ok(&harness(&[
        "list",
        "--only",
        "talos",
        "--profile",
        "talos-basic",
        "--talos-version",
        "v1.11.5",
        "--helm",
        "/nonexistent/helm",
    ]));
    assert_eq!(talos_only.lines().count(), 1, "{talos_only}");
}

/// save writes one archive keyed by the image ID (the stand-in is a local image) and an index;
/// load puts a removed image back with the same ID; a second save writes nothing new.
#[test]
fn save_then_load_round_trips_the_stand_in_image() {
    if !common::docker_or_skip("save_then_load_round_trips") {
        return;
    }
    let repo = format!("harness-test/cache-{}", common::unique("rt"));
    let image = format!("{repo}:v1.11.5");
    tag(&common::standin("v1.11.5"), &repo, "v1.11.5");
    let id = image_id(&image).expect("tagged");
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("images");
    let args = |verb: &'static str| {
        vec![
            verb.to_string(),
            "--only".into(),
            "talos".into(),
            "--profile".into(),
            "talos-basic".into(),
            "--talos-version".into(),
            "v1.11.5".into(),
            "--talos-image-repo".into(),
            repo.clone(),
            "--cache-dir".into(),
            dir.display().to_string(),
        ]
    };
    let save: Vec<String> = args("save");
    let save: Vec<&str> = save.iter().map(String::as_str).collect();
    ok(&harness(&save));
    let archive = dir.join(format!("{}.tar", id.trim_start_matches("sha256:")));
    assert!(archive.is_file(), "{}", archive.display());
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index[0]["reference"], image.as_str());
    assert_eq!(index[0]["id"], id.as_str());
    assert_eq!(index[0]["digest"], serde_json::Value::Null);
    let out = harness(&save);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(0 written now)"),
        "a cached image is not saved again"
    );

    remove(&image);
    assert_eq!(image_id(&image), None);
    let out = harness(&["load", "--cache-dir", dir.to_str().unwrap()]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("loaded 1 image(s)"));
    assert_eq!(image_id(&image).as_deref(), Some(id.as_str()));
    // Already there: nothing to load.
    let out = harness(&["load", "--cache-dir", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("loaded 0 image(s)"));
    remove(&image);

    let empty = tempfile::tempdir().unwrap();
    let out = harness(&["load", "--cache-dir", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no index.json"));
}

/// pull fetches an absent image from a registry (docker-registry on loopback, which Docker
/// trusts over plain HTTP) and save keys a pulled image by its registry digest.
#[test]
fn pull_fetches_from_a_registry_and_save_keys_it_by_digest() {
    let Some((reg, repo)) = standin_in_registry("pull_fetches_from_a_registry") else {
        return;
    };
    let image = format!("{repo}:v1.11.5");
    let common_args = [
        "--only",
        "talos",
        "--profile",
        "talos-basic",
        "--talos-version",
        "v1.11.5",
        "--talos-image-repo",
        repo.as_str(),
        "--timeout",
        "60s",
    ];
    let mut pull = vec!["pull"];
    pull.extend(common_args);
    ok(&harness(&pull));
    assert!(image_id(&image).is_some(), "pulled from {}", reg.url);

    let cache = tempfile::tempdir().unwrap();
    let mut save = vec!["save", "--cache-dir", cache.path().to_str().unwrap()];
    save.extend(common_args);
    ok(&harness(&save));
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cache.path().join("index.json")).unwrap())
            .unwrap();
    let digest = index[0]["digest"].as_str().expect("a registry digest");
    assert!(digest.starts_with(&format!("{repo}@sha256:")), "{digest}");
    let file = index[0]["file"].as_str().unwrap();
    assert_eq!(
        file,
        format!("{}.tar", digest.rsplit_once(':').unwrap().1),
        "named by the digest"
    );
    assert!(Path::new(cache.path()).join(file).is_file());
    remove(&image);
}

/// `make cache` (`.ci/registry-cache`): a pull-through registry in front of an upstream (here a
/// registry on loopback holding the stand-in image, instead of quay.io): the printed
/// `--registry-mirror` flag names it, an image pulled through it lands in its storage, and
/// `stop` ends it.
#[test]
fn make_cache_starts_a_pull_through_registry_that_serves_the_upstreams_images() {
    let Some((upstream, _)) = standin_in_registry("make_cache") else {
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let port = registry::free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/registry-cache");
    let cache = |verb: &str| {
        Command::new(&script)
            .arg(verb)
            .env("CACHE_DIR", dir.path())
            .env("CACHE_LISTEN", "127.0.0.1")
            .env("CACHE_HOST", "127.0.0.1")
            .env("CACHE_PORT", port.to_string())
            .env("CACHE_UPSTREAMS", format!("quay.io={}", upstream.url))
            .output()
            .unwrap()
    };
    // Stops what it started however the test ends.
    struct Stop<F: Fn()>(F);
    impl<F: Fn()> Drop for Stop<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _stop = Stop(|| {
        cache("stop");
    });
    let out = cache("start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flags = String::from_utf8(out.stdout).unwrap();
    let mirror = format!("127.0.0.1:{port}");
    assert_eq!(
        flags.trim(),
        format!("--registry-mirror quay.io=http://{mirror}")
    );
    assert!(registry::v2_status(&mirror).is_some_and(|l| l.contains(" 200")));

    // Pulled through the cache: the image comes from the upstream and stays in the cache.
    let through = format!("{mirror}/harness-test/talos-standin");
    ok(&harness(&[
        "pull",
        "--only",
        "talos",
        "--profile",
        "talos-basic",
        "--talos-version",
        "v1.11.5",
        "--talos-image-repo",
        &through,
        "--timeout",
        "60s",
    ]));
    assert!(image_id(&format!("{through}:v1.11.5")).is_some());
    let stored = dir
        .path()
        .join("quay.io/docker/registry/v2/repositories/harness-test/talos-standin");
    assert!(stored.is_dir(), "cached in {}", stored.display());
    remove(&format!("{through}:v1.11.5"));

    let out = cache("stop");
    assert!(out.status.success());
    assert!(registry::v2_status(&mirror).is_none(), "stopped");
}
