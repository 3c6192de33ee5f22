# The front door. `make e2e` runs the default matrix; `make test` runs the tests.
CARGO ?= cargo
E2E_ARGS ?=
PLAN_ARGS ?=
TOOLS_ARGS ?=

.PHONY: e2e test lint plan tools bench clean upgrade-gate cache cache-stop

# One build for `make test`, `make e2e` and `make plan`: the dev profile with every target, so
# dependencies get the same features (a dev-dependency's features would otherwise differ) and
# `make e2e` after `make test` only checks that it is up to date. Cargo shows its progress.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
HARNESS_BIN = $(TARGET_DIR)/debug/harness

.PHONY: build
build:
	$(CARGO) build --workspace --all-targets

# Tools from `make tools` (.tools/bin) come first on PATH; without them, PATH's own are used.
e2e: build
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(HARNESS_BIN) e2e $(E2E_ARGS)

# The upgrade gate: Cilium FROM -> TO on PROFILE, suites before and after, disruption judged
# (`make upgrade-gate FROM=1.19.8 TO=1.20.2`). UPGRADE_ARGS adds flags, e.g. --downgrade,
# --talos-version v1.13.9 --to-talos-version v1.14.0, --dry-run. Exit 1: a regression; 3: the
# gate could not be carried out.
PROFILE ?= talos-basic
UPGRADE_ARGS ?=
upgrade-gate: build
	@if [ -z "$(FROM)" ] || [ -z "$(TO)" ]; then \
		echo "usage: make upgrade-gate FROM=<Cilium version> TO=<Cilium version> [PROFILE=$(PROFILE)] [UPGRADE_ARGS=...]" >&2; \
		exit 2; \
	fi
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(HARNESS_BIN) upgrade --profile "$(PROFILE)" \
		--cilium-version "$(FROM)" --to-cilium-version "$(TO)" $(UPGRADE_ARGS)

# The pinned helm and the talosctl of the default matrix's Talos releases, for this host, checked
# against their releases' checksum files (and pins.yaml); see .tools/tools.lock.
# HARNESS: a built harness to use instead (the nightly workflow passes the one it built).
HARNESS ?= $(CARGO) run -q -p harness --
tools:
	$(HARNESS) tools install $(TOOLS_ARGS)

test: lint
	$(CARGO) nextest run --workspace --all-targets --profile ci

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

plan: build
	$(HARNESS_BIN) plan $(PLAN_ARGS)

bench:
	$(CARGO) bench -p harness

clean:
	$(CARGO) run -q -p harness -- gc || true
	$(CARGO) clean
	find reports -mindepth 1 ! -name .gitkeep -delete

# Workflow lint (actionlint, zizmor) is part of `make lint`: under CI a missing tool fails it;
# elsewhere it says how to install them (.ci/lint-workflows --install).
.PHONY: lint-workflows
lint: lint-workflows
lint-workflows:
	.ci/lint-workflows

# Pull-through registries (Debian's docker-registry) for quay.io, ghcr.io, registry.k8s.io and
# docker.io; prints the --registry-mirror flags for `harness up` / `harness e2e` (E2E_ARGS).
cache:
	.ci/registry-cache start

cache-stop:
	.ci/registry-cache stop
