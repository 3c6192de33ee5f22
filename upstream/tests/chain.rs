//! The test-data source chain against a loopback HTTP server: the right file is downloaded once
//! and then read from the cache, a corrupted or missing one is refused with nothing left behind,
//! and the explicit directory and shared/ come before any download.

use std::path::Path;
use std::time::Duration;
use upstream::Sha256;
use upstream::test_server::Server;
use upstream::testdata::{Chain, Entry, Origin};

const BODY: &[u8] = b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n";

fn entry(url: Option<&'static str>) -> Entry {
    Entry {
        sha256: Sha256::of_bytes(BODY),
        path: "schemas/example/crd.yaml",
        url,
    }
}

fn chain(cache: &Path, mirror: Option<&str>) -> Chain {
    Chain {
        dir: None,
        shared: None,
        cache: Some(cache.to_path_buf()),
        mirror: mirror.map(String::from),
        timeout: Duration::from_secs(10),
    }
}

/// Every file under `dir`, hidden ones included.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn the_right_file_is_downloaded_once_then_read_from_the_cache() {
    let server = Server::start(vec![("/schemas/example/crd.yaml".into(), BODY.to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let c = chain(cache.path(), Some(&server.base));
    let (path, origin) = c.resolve_entry(&entry(None)).unwrap();
    assert_eq!(origin, Origin::Downloaded);
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
    assert!(path.starts_with(cache.path()));
    let (again, origin) = c.resolve_entry(&entry(None)).unwrap();
    assert_eq!((again, origin), (path, Origin::Cache));
    assert_eq!(server.requested(), ["/schemas/example/crd.yaml"]);
}

#[test]
fn the_upstream_url_is_used_without_a_mirror() {
    let server = Server::start(vec![("/upstream/at/commit/crd.yaml".into(), BODY.to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let url = leak(format!("{}/upstream/at/commit/crd.yaml", server.base));
    let (_, origin) = chain(cache.path(), None)
        .resolve_entry(&entry(Some(url)))
        .unwrap();
    assert_eq!(origin, Origin::Downloaded);
    assert_eq!(server.requested(), ["/upstream/at/commit/crd.yaml"]);
}

#[test]
fn a_corrupted_download_is_refused_and_nothing_is_kept() {
    let mut corrupted = BODY.to_vec();
    corrupted[0] ^= 0x20;
    let server = Server::start(vec![("/schemas/example/crd.yaml".into(), corrupted)]);
    let cache = tempfile::tempdir().unwrap();
    let err = chain(cache.path(), Some(&server.base))
        .resolve_entry(&entry(None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("has sha256"), "{err}");
    assert!(err.contains(&Sha256::of_bytes(BODY).to_string()), "{err}");
    assert!(err.contains("fix: point HARNESS_TEST_DATA"), "{err}");
    assert_eq!(files(cache.path()), Vec::<String>::new());
}

#[test]
fn a_missing_file_is_refused_with_the_status_and_nothing_is_kept() {
    let server = Server::start(vec![]);
    let cache = tempfile::tempdir().unwrap();
    let err = chain(cache.path(), Some(&server.base))
        .resolve_entry(&entry(None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("answered HTTP 404"), "{err}");
    assert!(err.contains("no shared/ beside the checkout"), "{err}");
    assert_eq!(files(cache.path()), Vec::<String>::new());
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    // Bind and drop a listener: nothing answers on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let err = chain(cache.path(), Some(&format!("http://127.0.0.1:{port}")))
        .resolve_entry(&entry(None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("download: GET http://127.0.0.1:"), "{err}");
    assert_eq!(files(cache.path()), Vec::<String>::new());
}

#[test]
fn a_damaged_cache_entry_is_replaced() {
    let server = Server::start(vec![("/schemas/example/crd.yaml".into(), BODY.to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let cached = cache
        .path()
        .join(Sha256::of_bytes(BODY).to_string())
        .join("crd.yaml");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::write(&cached, b"truncated").unwrap();
    let (path, origin) = chain(cache.path(), Some(&server.base))
        .resolve_entry(&entry(None))
        .unwrap();
    assert_eq!(
        (path.as_path(), origin),
        (cached.as_path(), Origin::Downloaded)
    );
    assert_eq!(std::fs::read(&cached).unwrap(), BODY);
}

#[test]
fn the_explicit_directory_is_the_only_place_when_set() {
    let server = Server::start(vec![("/schemas/example/crd.yaml".into(), BODY.to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(cache.path(), Some(&server.base));
    c.dir = Some(dir.path().to_path_buf());
    // Absent there: an error, not a download.
    let err = c.resolve_entry(&entry(None)).unwrap_err().to_string();
    assert!(err.contains("HARNESS_TEST_DATA="), "{err}");
    let file = dir.path().join("schemas/example/crd.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"edited by hand").unwrap();
    let err = c.resolve_entry(&entry(None)).unwrap_err().to_string();
    assert!(err.contains("testdata.sha256 says"), "{err}");
    std::fs::write(&file, BODY).unwrap();
    assert_eq!(c.resolve_entry(&entry(None)).unwrap(), (file, Origin::Dir));
    assert_eq!(server.requested(), Vec::<String>::new());
}

#[test]
fn shared_comes_before_the_cache_and_a_download() {
    let server = Server::start(vec![("/schemas/example/crd.yaml".into(), BODY.to_vec())]);
    let cache = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let file = shared.path().join("schemas/example/crd.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, BODY).unwrap();
    let mut c = chain(cache.path(), Some(&server.base));
    c.shared = Some(shared.path().to_path_buf());
    assert_eq!(
        c.resolve_entry(&entry(None)).unwrap(),
        (file, Origin::Shared)
    );
    assert_eq!(server.requested(), Vec::<String>::new());
    // A shared/ without the file falls through to the download.
    std::fs::remove_dir_all(shared.path().join("schemas")).unwrap();
    assert_eq!(c.resolve_entry(&entry(None)).unwrap().1, Origin::Downloaded);
}

#[test]
fn a_file_without_an_upstream_url_needs_a_mirror_or_a_copy() {
    let cache = tempfile::tempdir().unwrap();
    let err = chain(cache.path(), None)
        .resolve_entry(&entry(None))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no public upstream URL"), "{err}");
}

#[test]
fn a_real_chart_comes_through_the_chain_from_a_mirror() {
    // The bytes are the real published chart (from wherever this run's chain finds it), served
    // as a mirror would; the download is checked against the committed index digest.
    let rel = "charts/cilium-1.18.4.tgz";
    let real = match upstream::testdata::try_path(rel) {
        Ok(p) => std::fs::read(p).unwrap(),
        Err(e) if !upstream::testdata::in_ci() => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let server = Server::start(vec![(format!("/{rel}"), real.clone())]);
    let cache = tempfile::tempdir().unwrap();
    let (path, origin) = chain(cache.path(), Some(&server.base))
        .resolve(rel)
        .unwrap();
    assert_eq!(origin, Origin::Downloaded);
    assert_eq!(std::fs::read(path).unwrap(), real);
}
