# Every target does its own set-up from a fresh clone: Python 3.11+, make and the package registries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test bench lint clean toxiproxy

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

DEMO_SCALE ?= 0.5

demo: setup .bin/toxiproxy-server
	$(BIN)/chaos-harness demo
	$(BIN)/chaos-harness run scenarios/smoke --time-scale $(DEMO_SCALE) --out runs

test: setup .bin/toxiproxy-server
	$(BIN)/python -m pytest

bench: setup .bin/toxiproxy-server
	$(BIN)/python -m harness.benchmarks.core_overhead
	$(BIN)/python -m harness.benchmarks.gateway_overhead

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis

# Toxiproxy, pinned: built from the Go module proxy where Go is present (it is on our machines).
TOXIPROXY_VERSION := v2.12.0
.bin/toxiproxy-server:
	@mkdir -p .bin
	@if command -v go >/dev/null 2>&1; then \
		echo "building toxiproxy-server $(TOXIPROXY_VERSION) with go install"; \
		GOBIN=$(CURDIR)/.bin go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) && \
		mv .bin/server .bin/toxiproxy-server; \
	else \
		echo "Go is not installed, so toxiproxy-server $(TOXIPROXY_VERSION) cannot be built here."; \
		echo "Install Go (https://go.dev/dl) or put a toxiproxy-server binary on PATH / in TOXIPROXY_SERVER."; \
		exit 2; \
	fi

toxiproxy: .bin/toxiproxy-server
