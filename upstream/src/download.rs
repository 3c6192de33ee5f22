//! HTTP downloads that are checked before they are kept: the body streams into a temporary file
//! beside the destination while it is hashed, and only a body with the expected sha256 is
//! renamed into place. A failed or wrong download leaves nothing behind.

use crate::Sha256;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GET {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than the {limit} bytes allowed for it")]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{url} has sha256 {actual}, but {expected} was expected; nothing was kept (a corrupted \
         or replaced file: retry, or check the pin if upstream re-published it)"
    )]
    Mismatch {
        url: String,
        expected: Sha256,
        actual: Sha256,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A blocking HTTP client (rustls, the system's roots) with a bound on every request.
#[derive(Clone, Debug)]
pub struct Client {
    inner: reqwest::blocking::Client,
}

impl Client {
    /// `timeout` bounds each whole request, connection to last byte.
    pub fn new(timeout: Duration) -> Result<Client, Error> {
        let inner = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("talos-cilium-harness/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Fetch {
                url: String::new(),
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Client { inner })
    }

    fn get(&self, url: &str) -> Result<reqwest::blocking::Response, Error> {
        let response = self.inner.get(url).send().map_err(|e| Error::Fetch {
            url: url.to_string(),
            message: error_chain(&e),
        })?;
        if !response.status().is_success() {
            return Err(Error::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        Ok(response)
    }

    /// A small text document (a checksum listing), refused past `limit` bytes.
    pub fn text(&self, url: &str, limit: u64) -> Result<String, Error> {
        let mut body = Vec::new();
        self.get(url)?
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::Fetch {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        if body.len() as u64 > limit {
            return Err(Error::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        String::from_utf8(body).map_err(|e| Error::Fetch {
            url: url.to_string(),
            message: format!("not UTF-8 text: {e}"),
        })
    }

    /// Stream `url` into a temporary file in `dir`, hashing as it goes. The file is removed when
    /// the returned handle drops unless the caller persists it.
    pub fn to_temp(
        &self,
        url: &str,
        dir: &Path,
    ) -> Result<(tempfile::NamedTempFile, Sha256), Error> {
        use sha2::Digest;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut response = self.get(url)?;
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)
            .map_err(io(dir))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = response.read(&mut buf).map_err(|e| Error::Fetch {
                url: url.to_string(),
                message: format!("the transfer broke: {e}"),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io(file.path()))?;
        }
        file.as_file().sync_all().map_err(io(file.path()))?;
        Ok((file, Sha256(hasher.finalize().into())))
    }

    /// Download `url` to `dest` if and only if its sha256 is `expected`.
    pub fn fetch_verified(&self, url: &str, expected: &Sha256, dest: &Path) -> Result<(), Error> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let (file, actual) = self.to_temp(url, dir)?;
        if &actual != expected {
            return Err(Error::Mismatch {
                url: url.to_string(),
                expected: *expected,
                actual,
            });
        }
        file.persist(dest).map_err(|e| Error::Io {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// reqwest's top-level message hides the cause ("error sending request"): name all of it.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
