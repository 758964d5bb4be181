# Plinth's front door. Thin on purpose: logic lives in Rust and in deploy/scripts/; these targets only
# name and order the steps. `make` alone lists them.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# The phases of `make test` must run in order and stop at the first failure, even under `make -j`.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules --no-print-directory

# Build output and tools live outside the work tree, so checkouts share them and `git clean` keeps them.
# As root (CI, the dev machines) the target dir is /var/cache/plinth/target, the dir .ci/run uses, so a CI
# run reuses what `make` built. Override either on the command line or in the environment.
USER_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/plinth
ifeq ($(shell id -u),0)
CARGO_TARGET_DIR ?= /var/cache/plinth/target
else
CARGO_TARGET_DIR ?= $(USER_CACHE)/target
endif
PLINTH_TOOLS_DIR ?= $(USER_CACHE)/tools
PLINTH_VENV ?= $(PLINTH_TOOLS_DIR)/venv
PLINTH_PEERS_VENV ?= $(PLINTH_TOOLS_DIR)/peers-venv
export CARGO_TARGET_DIR PLINTH_TOOLS_DIR PLINTH_VENV PLINTH_PEERS_VENV

TOOLS := bash deploy/scripts/tools.sh
SERVICES := bash deploy/scripts/services.sh
TIMED := bash deploy/scripts/timed.sh
BUF := $(PLINTH_TOOLS_DIR)/bin/buf

.PHONY: help
help: ## list the targets
	@echo "usage: make TARGET"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 16
	@echo
	@echo "CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)"
	@echo "PLINTH_TOOLS_DIR=$(PLINTH_TOOLS_DIR)"

.PHONY: run
run: ## start all of Plinth in one process on embedded defaults, with a demo (`plinth up --demo`)
	@$(TOOLS) kafka venv
	cargo run -p plinth-cli --bin plinth -- up --demo

.PHONY: test
test: ## the gate: tools, services, lint, doc, nextest, helm-check, buf-lint (stops at the first failure)
	@$(TIMED) tools $(TOOLS) helm buf venv kafka s3
	@$(TIMED) services $(SERVICES) ensure
	@$(TIMED) lint $(MAKE) lint
	@$(TIMED) doc $(MAKE) doc
	@$(TIMED) nextest $(MAKE) nextest
	@$(TIMED) helm-check $(MAKE) helm-check
	@$(TIMED) buf-lint $(MAKE) buf-lint

.PHONY: tools
tools: ## install the developer tools (helm, buf, Python venv, tansu, s3rver, noida-db) into PLINTH_TOOLS_DIR
	@$(TOOLS) all

.PHONY: services
services: ## make sure PostgreSQL (127.0.0.1:5432, db test) and Redis (127.0.0.1:6379) are up
	@$(SERVICES) ensure

.PHONY: lint
lint: ## rustfmt check and clippy with warnings denied
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: doc
doc: ## rustdoc with warnings denied
	RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked

.PHONY: nextest
nextest: ## all tests, against real PostgreSQL, Redis, a tansu broker and the s3rver S3 server
	@$(TOOLS) kafka venv s3
	@$(SERVICES) ensure
	cargo build --workspace --bins --locked && cargo nextest run --workspace --locked --no-fail-fast

.PHONY: helm-check
helm-check: ## helm lint --strict, helm template and kubernetes-validate for every chart under helm/
	@$(TOOLS) helm venv
	@bash deploy/scripts/helm-check.sh

.PHONY: buf-lint
buf-lint: ## buf lint and buf format check of proto/
	@$(TOOLS) buf
	cd proto && $(BUF) lint && $(BUF) format -d --exit-code

.PHONY: bench
bench: ## benchmarks against peers (installs them first: Feast and Airflow in PLINTH_PEERS_VENV, MLServer, tansu)
	@$(TOOLS) all peers
	@$(SERVICES) ensure
	cargo bench --workspace

.PHONY: fmt
fmt: ## format Rust and proto sources in place
	cargo fmt --all
	@$(TOOLS) buf
	cd proto && $(BUF) format -w
