# Every target does its own set-up from a fresh clone: Python 3.11+, make and the package registries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test bench bench-peers lint clean toxiproxy browser valgrind node

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

DEMO_SCALE ?= 0.5

demo: setup toxiproxy
	$(BIN)/chaos-harness demo
	$(BIN)/chaos-harness run scenarios/smoke --time-scale $(DEMO_SCALE) --out runs

test: setup toxiproxy browser
	$(BIN)/python -m pytest

bench: setup toxiproxy valgrind
	$(BIN)/python -m harness.benchmarks.core_overhead
	$(BIN)/python -m harness.benchmarks.gateway_overhead
	$(BIN)/python -m harness.benchmarks.suite
	$(BIN)/python -m harness.benchmarks.simulation
	$(BIN)/python -m harness.benchmarks.versus
	$(BIN)/python -m harness.benchmarks.combine

# Our gateway beside LiteLLM (pinned, installed once into .peers/litellm from PyPI) and Portkey
# (pinned, installed once into .peers/portkey with npm; needs Node.js) on the smoke
# suite: the scorecard goes to docs/benchmarks/peers.md and the README.
bench-peers: setup toxiproxy node
	$(BIN)/python -m harness.benchmarks.peers

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .peers .pytest_cache .ruff_cache .mypy_cache .hypothesis

# Toxiproxy, pinned: a server the harness can already find (TOXIPROXY_URL, TOXIPROXY_SERVER, .bin/,
# PATH) is used as it is; else built from the Go module proxy where Go is present (it is on our
# machines); else the release binary for this platform; else a message saying how to get one.
TOXIPROXY_VERSION := v2.12.0
TOXIPROXY_RELEASES := https://github.com/Shopify/toxiproxy/releases/download/$(TOXIPROXY_VERSION)
toxiproxy:
	@if [ -n "$$TOXIPROXY_URL" ] || [ -n "$$TOXIPROXY_SERVER" ] || [ -x .bin/toxiproxy-server ] \
		|| command -v toxiproxy-server >/dev/null 2>&1; then exit 0; fi; \
	$(MAKE) --no-print-directory .bin/toxiproxy-server

.bin/toxiproxy-server:
	@mkdir -p .bin
	@if command -v go >/dev/null 2>&1; then \
		echo "building toxiproxy-server $(TOXIPROXY_VERSION) with go install"; \
		GOBIN=$(CURDIR)/.bin go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) && \
		mv .bin/server .bin/toxiproxy-server; \
	else \
		os=$$(uname -s | tr A-Z a-z); arch=$$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/'); \
		url="$(TOXIPROXY_RELEASES)/toxiproxy-server-$$os-$$arch"; \
		echo "Go is not installed: downloading $$url"; \
		if curl -fsSL -o .bin/toxiproxy-server.part "$$url"; then \
			chmod +x .bin/toxiproxy-server.part && mv .bin/toxiproxy-server.part .bin/toxiproxy-server; \
		else \
			rm -f .bin/toxiproxy-server.part; \
			echo "Could not get toxiproxy-server $(TOXIPROXY_VERSION): no Go to build it and the release download failed."; \
			echo "Install Go (https://go.dev/dl), or put a toxiproxy-server binary on PATH or in TOXIPROXY_SERVER,"; \
			echo "or point TOXIPROXY_URL at a running server (e.g. docker compose up toxiproxy)."; \
			exit 2; \
		fi; \
	fi

# $(call apt_install,PACKAGE,WHAT IS LOST WITHOUT IT): Debian's package through apt-get when this
# is root on a Debian-like system; otherwise one line saying why not and what goes missing.
apt_install = if ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(1): missing and there is no apt-get here to install it; $(2)"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "$(1): missing and installing it needs root ('sudo apt-get install -y $(1)'); $(2)"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(1) \
			|| echo "$(1): 'apt-get install -y $(1)' failed (see above); $(2)"; \
	fi

# The dashboard's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download does not work everywhere). Without it those tests skip, saying why.
CHROMIUM := /usr/bin/chromium
browser:
	@[ -x $(CHROMIUM) ] || { $(call apt_install,chromium,the browser tests will be skipped); }

# The gateway bench counts instructions per request with callgrind (CPU seconds alone are too
# noisy on shared machines); without valgrind that one figure is skipped and says why.
valgrind:
	@command -v valgrind >/dev/null 2>&1 || { $(call apt_install,valgrind,the bench skips the instruction count); }

# Portkey's gateway (bench-peers) runs on Node.js; npm installs it.
node:
	@command -v npm >/dev/null 2>&1 || { $(call apt_install,nodejs npm,bench-peers cannot run the Portkey gateway); }
