//! A registry on loopback: Debian's `docker-registry` (CNCF distribution 2.8, the registry the
//! Docker Hub `registry:2` image runs) with its storage in a temporary directory. `.ci/run`
//! installs it; without it a test skips with the reason, or fails under `CI`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalRegistry {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `127.0.0.1:<port>`, as image references name it.
    pub host: String,
    _dir: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("docker-registry"))
        .find(|p| p.is_file())
}

/// `GET /v2/` status line, if the registry answers.
pub fn v2_status(host: &str) -> Option<String> {
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.lines().next().map(str::to_string)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl LocalRegistry {
    pub fn start_or_skip(test: &str) -> Option<LocalRegistry> {
        let Some(bin) = binary() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set, so {test} needs docker-registry (Debian package docker-registry)"
                );
            }
            eprintln!(
                "skipping {test}: docker-registry is not installed (apt-get install docker-registry)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = LocalRegistry {
            child,
            url: format!("http://{host}"),
            host: host.clone(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while v2_status(&host).is_none_or(|l| !l.contains(" 200")) {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {host} within 20s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(reg)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
