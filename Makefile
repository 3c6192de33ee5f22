# The front door. `make e2e` runs the default matrix; `make test` runs the tests.
CARGO ?= cargo
E2E_ARGS ?=
PLAN_ARGS ?=

.PHONY: e2e test lint plan render-check bench clean

e2e:
	$(CARGO) run --release -q -p harness -- e2e $(E2E_ARGS)

test: lint
	$(CARGO) nextest run --workspace --all-targets --profile ci

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

plan:
	$(CARGO) run -q -p harness -- plan $(PLAN_ARGS)

# helm template of every rendered profile against the real chart; needs helm and the chart repo
# (set CILIUM_CHART_REPO for a mirror). Not possible on machines without internet.
render-check:
	$(CARGO) nextest run -p harness --run-ignored only -E 'test(helm_template_renders_every_profile)'

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
