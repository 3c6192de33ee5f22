//! Taking one file out of a release tarball (.tar.gz) into a temporary file, hashed.

use sha2::Digest;
use std::io::{Read, Write};
use std::path::Path;
use upstream::Sha256;

/// The member `name` (e.g. `linux-amd64/helm`) of the gzip'd tarball at `archive`, written to a
/// temporary file in `dir`, with its sha256.
pub fn extract(
    archive: &Path,
    name: &str,
    dir: &Path,
) -> Result<(tempfile::NamedTempFile, Sha256), String> {
    let file = std::fs::File::open(archive).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar.entries().map_err(|e| format!("not a tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("a damaged tar.gz: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path != Path::new(name) {
            continue;
        }
        let mut out = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)
            .map_err(|e| e.to_string())?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| format!("a damaged tar.gz: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        return Ok((out, Sha256(hasher.finalize().into())));
    }
    Err(format!("the archive holds no {name}"))
}
