#!/usr/bin/env python3
"""Write cilium-charts.tsv: version, sha256 and date of every published Cilium chart of the
minors in releases.yaml, from the cilium/charts repository index.

    python3 harness/data/gen_cilium_charts.py [INDEX [COMMIT]] > harness/data/cilium-charts.tsv

INDEX is a path or URL of the index (default https://helm.cilium.io/index.yaml, which
cilium/charts serves); COMMIT, the cilium/charts commit it came from, goes in the header. Needs PyYAML. The test `chart_digests_are_current` in
harness/src/releases.rs compares the output with ../shared/charts/cilium-index.tsv.
"""
import pathlib
import sys
import urllib.request

import yaml

HERE = pathlib.Path(__file__).resolve().parent


def load(src):
    if src.startswith(("http://", "https://")):
        with urllib.request.urlopen(src, timeout=60) as r:
            return yaml.safe_load(r.read())
    return yaml.safe_load(pathlib.Path(src).read_text())


def key(version):
    return tuple(int(p) for p in version.split("."))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "https://helm.cilium.io/index.yaml"
    minors = {c["minor"] for c in yaml.safe_load((HERE / "releases.yaml").read_text())["cilium"]}
    rows = []
    for entry in load(src)["entries"]["cilium"]:
        v = entry["version"]
        parts = v.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue  # pre-releases are not pinned
        if f"{parts[0]}.{parts[1]}" in minors:
            rows.append((v, entry["digest"], str(entry["created"])[:10]))
    at = f" at {sys.argv[2]}" if len(sys.argv) > 2 else ""
    print(f"# version\tsha256\tcreated (cilium/charts index.yaml{at}; regenerate with gen_cilium_charts.py)")
    for v, digest, created in sorted(rows, key=lambda r: key(r[0])):
        print(f"{v}\t{digest}\t{created}")


if __name__ == "__main__":
    main()
