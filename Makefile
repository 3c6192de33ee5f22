# The front door. `make e2e` runs the default matrix; `make test` runs the tests.
CARGO ?= cargo
E2E_ARGS ?=
PLAN_ARGS ?=
TOOLS_ARGS ?=

.PHONY: e2e test lint plan tools bench clean

# Tools from `make tools` (.tools/bin) come first on PATH; without them, PATH's own are used.
e2e:
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(CARGO) run --release -q -p harness -- e2e $(E2E_ARGS)

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

plan:
	$(CARGO) run -q -p harness -- plan $(PLAN_ARGS)

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
