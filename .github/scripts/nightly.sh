#!/usr/bin/env bash
# The nightly workflow's harness commands, in one place so the workflow and the tests run the
# same thing (harness/tests/github_matrix.rs runs `matrix` and `plan` exactly as the jobs do).
#
#   nightly.sh matrix     the GitHub job matrix: the plan's cells in $SHARDS hash shards
#   nightly.sh plan       the plan of shard $PARTITION (what `e2e` will run)
#   nightly.sh e2e        run shard $PARTITION, JUnit in reports/junit-<shard>.xml
#   nightly.sh images-save  the matrix's Talos images into $IMAGE_CACHE (`harness images save`)
#
# Environment: HARNESS (the harness binary), PROFILES, CILIUM_VERSIONS, TALOS_VERSIONS (space-
# or comma-separated; empty: the matrix file's), MATRIX_FILE (default profiles/matrix/nightly.yaml
# when present, else the embedded default), SHARDS, PARTITION (hash:K/N), RUN_ID,
# REGISTRY_MIRRORS (the --registry-mirror flags `make cache` prints), IMAGE_CACHE.
# Inputs arrive through the environment, never spliced into the script text.
set -euo pipefail

: "${HARNESS:?set HARNESS to the harness binary}"
select=()
matrix_file="${MATRIX_FILE:-profiles/matrix/nightly.yaml}"
if [ -f "$matrix_file" ]; then
  select+=(--matrix "$matrix_file")
fi
axis() {
  local flag=$1 item items
  IFS=', ' read -r -a items <<<"${2:-}"
  for item in "${items[@]}"; do
    if [ -n "$item" ]; then
      select+=("$flag" "$item")
    fi
  done
}
axis --profile "${PROFILES:-}"
axis --cilium-version "${CILIUM_VERSIONS:-}"
axis --talos-version "${TALOS_VERSIONS:-}"

case "${1:-}" in
  matrix)
    exec "$HARNESS" plan "${select[@]}" --output github-matrix --shards "${SHARDS:-4}"
    ;;
  plan)
    : "${PARTITION:?set PARTITION to hash:K/N}"
    exec "$HARNESS" plan "${select[@]}" --partition "$PARTITION" --output json
    ;;
  e2e)
    : "${PARTITION:?set PARTITION to hash:K/N}"
    shard=${PARTITION//[:\/]/-}
    # `make tools` puts the pinned talosctl and helm here.
    export PATH="$PWD/.tools/bin:$PATH"
    read -r -a mirrors <<<"${REGISTRY_MIRRORS:-}"
    exec "$HARNESS" e2e "${select[@]}" --partition "$PARTITION" \
      --junit "reports/junit-$shard.xml" --artifacts reports/artifacts \
      --run-id "${RUN_ID:-nightly-$shard}" "${mirrors[@]}"
    ;;
  images-save)
    # The nodes pull Cilium's and the probes' images through the registry cache; the host's
    # Docker holds only the Talos node images.
    exec "$HARNESS" images save "${select[@]}" --only talos --cache-dir "${IMAGE_CACHE:?set IMAGE_CACHE}"
    ;;
  *)
    echo "usage: nightly.sh matrix|plan|e2e|images-save (see the comment at the top)" >&2
    exit 2
    ;;
esac
