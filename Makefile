# One entry point for setup, running and testing. `make install` is idempotent: it only reinstalls
# when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Servers the tests start on their own (PostgreSQL for the shared identity store, Redis for the
# shared limits). apt-get only runs when one is missing, so a prepared machine installs nothing;
# `make run` needs neither, so only the tests ask for them.
SYSTEM_PACKAGES := postgresql redis-server

# The lock files' resolver (`make lock`), installed into the venv by that target only.
UV_VERSION := 0.13.9

.PHONY: install lock system-packages run test conformance lint typecheck bench fuzz clean

install: $(STAMP)

system-packages:
	@missing=""; for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" \
			|| missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Exactly the versions of requirements-dev.lock: eventpipe with its dev and embedded (chDB, the
# broker) extras, and the benchmarks (benchmarks/, run as `eventpipe bench`), a distribution of
# their own kept out of eventpipe's install. A lock older than pyproject.toml stops it here.
$(STAMP): pyproject.toml benchmarks/pyproject.toml requirements-dev.lock
	@$(PYTHON) deploy/lock.py --check
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	@touch $(STAMP)

# Resolve requirements.lock (the image's) and requirements-dev.lock again after a change to the
# dependencies in pyproject.toml; pins that still fit are kept.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/python deploy/lock.py

run: install
	$(BIN)/eventpipe dev

# The checks against a CVAT source tree (CVAT_SOURCE, default ../shared/cvat-2.73): its table,
# export, dashboards, client scopes, working time and compose project. `make test` runs them too.
conformance: install
	$(BIN)/python -m pytest -q tests/conformance $(PYTEST_ARGS)

# Lint and types first: they take seconds and hold the code to the project's standards in CI too.
# Two test processes: most tests wait on real engines, so a second one keeps both cores busy. Each
# file stays in one process (its fixtures are shared within it).
test: system-packages lint typecheck
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# schemathesis against `eventpipe dev` at length (at least 10,000 generated cases on the API, 3,000
# on the intake), for before a release; `make test` runs the same tests for about 90 s.
# FUZZ_SEED=<seed> replays a run.
fuzz: install
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FUZZ_MIN_CASES=10000 \
		FUZZ_INTAKE_SECONDS=$${FUZZ_INTAKE_SECONDS:-300} FUZZ_INTAKE_MIN_CASES=3000 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_schemathesis.py

bench: install
	$(BIN)/eventpipe bench ingest

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
