# Crypto Price Server: the developer entry points (GNU make).
#
#   make run      create .venv, install, serve on http://127.0.0.1:8000 (embedded defaults)
#   make test     the whole test suite (needs the PostgreSQL and Redis described in README.md)
#   make fuzz     schemathesis against a live server, every check, for FUZZ_SECONDS
#   make container-test  docker-compose up --build, the API, logs, restarts, then down -v
#   make lock     write the lock files anew from pyproject.toml
#   make start    build the image and run it, with PostgreSQL and Redis, on kubectl's cluster
#   make stop     delete all that make start created, the database's volume included
#
# Override any variable on the command line: make run PORT=9000

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 60

BIN := $(VENV)/bin
# Written after a successful install; the install runs again only when pyproject.toml
# or the dev lock is newer than it (or the venv is new).
STAMP := $(VENV)/.installed
# make lock writes them from pyproject.toml, with every artifact's hash, for every platform
# (linux amd64 and arm64 images alike). The image installs LOCK (runtime only) and builds the
# project with BUILD_LOCK (setuptools); make install (and CI) installs DEV_LOCK (runtime, dev,
# embedded, setuptools).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
BUILD_LOCK := requirements-build.lock
# make lock LOCK_ARGS=--upgrade (or --upgrade-package NAME): newer pins; else each is kept.
LOCK_ARGS ?=
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--native-tls --custom-compile-command 'make lock' $(LOCK_ARGS)
APP := interfaces.http.app:create_app

export AERICH_NO_TORTOISE_V1_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Kubernetes. kubectl: the operator's own on PATH, else the one `make install` puts in .venv.
KUBECTL ?= $(or $(shell command -v kubectl 2>/dev/null),$(BIN)/kubectl)
# make start: the registry repository to push to, for a cluster that is not kind or minikube.
IMAGE ?=
K8S_NAMESPACE := crypto-price
MIGRATE_JOB := crypto-price-server-migrate
# make start writes k8s/dev with the image it built here (build/ is not committed).
DEV_OVERLAY := build/k8s-dev
# make start: how long the migration Job may take, and how often it is looked at.
MIGRATE_TIMEOUT_SECONDS ?= 600
JOB_POLL_SECONDS ?= 2
# make manifests validates against this version's API schemas: the oldest we support.
K8S_VERSION ?= 1.31.0
# --quiet prints only problems: an ERROR, or a WARN for a kind it has no schema for.
VALIDATE = $(BIN)/kubernetes-validate --strict --quiet --kubernetes-version $(K8S_VERSION) -

# Shell snippets for the recipes: $$context is kubectl's current context, and a local
# cluster (kind, minikube) is one make start can load the image into.
KUBE_CONTEXT = context=$$($(KUBECTL) config current-context) || { echo "make $@: \`$(KUBECTL) config current-context\` failed: install kubectl (or make install) and point it at a cluster" >&2; exit 1; }; echo "kubectl context: $$context"
LOCAL_CLUSTER = kind-* | minikube

.PHONY: help install lock container-test run test screenshots fuzz migrate lint format bench clean clean-data start stop manifests

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  make %-11s %s\n", $$1, $$2 }'

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --require-hashes -r $(DEV_LOCK)
	@# The project itself: its dependencies are all in the lock, setuptools included.
	$(BIN)/python -m pip install --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP) ## create .venv and install the project with its dev tools, from the dev lock

lock: $(STAMP) ## write the lock files anew from pyproject.toml (then commit them with it)
	@# setuptools (the build backend) is read from pyproject.toml's [build-system].
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - -o $(BUILD_LOCK)
	@# sanic declares setuptools but never imports it: the image goes without (and installs
	@# the lock with --no-deps, the lock being the whole closure).
	$(UV_COMPILE) pyproject.toml --no-emit-package setuptools -o $(LOCK)
	$(UV_COMPILE) pyproject.toml $(BUILD_LOCK) --extra dev --extra embedded -o $(DEV_LOCK)

run: $(STAMP) ## serve on HOST:PORT, one process (embedded PostgreSQL and cache unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/sanic $(APP) --factory --single-process --host $(HOST) --port $(PORT)

test: $(STAMP) ## run the whole test suite (PYTEST_ARGS="-x -k name" to narrow it)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

container-test: $(STAMP) ## docker-compose up --build, then the checks of tests/containers (Docker, docker-compose)
	$(BIN)/python -m pytest -q tests/containers $(PYTEST_ARGS)

screenshots: $(STAMP) ## run the browser tests and keep their screenshots in docs/screenshots (the README's)
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser

fuzz: $(STAMP) ## schemathesis with every check against a live server (scratch database) for FUZZ_SECONDS
	$(BIN)/python -m tests.fuzz.run_fuzz --seconds $(FUZZ_SECONDS)

migrate: $(STAMP) ## apply the aerich migrations to DATABASE_URL
	@if [ -z "$${DATABASE_URL:-}" ]; then \
		echo "make migrate: set DATABASE_URL=postgres://user:password@host:5432/dbname" \
			"(the embedded database of 'make run' is migrated by the server itself)" >&2; \
		exit 1; \
	fi
	$(BIN)/aerich -c aerich.ini upgrade

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## bench.goals with wrk (wrk, py-spy installed when missing), then every other bench/*.py (not _*)
	@command -v wrk >/dev/null || { sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "wrk not found: $$sudo apt-get install -y wrk"; \
		$$sudo apt-get install -y wrk || { $$sudo apt-get update && $$sudo apt-get install -y wrk; }; }
	@[ -x $(BIN)/py-spy ] || $(BIN)/python -m pip install py-spy
	@shopt -s nullglob; scripts=(bench/goals.py bench/[!_]*.py); \
	for script in "$${scripts[@]}"; do \
		module="bench.$$(basename "$$script" .py)"; \
		[[ " $${done:-} " == *" $$module "* ]] && continue; done="$${done:-} $$module"; \
		echo "==> python -m $$module"; \
		$(BIN)/python -m "$$module"; \
	done

clean: ## remove .venv, build output and caches (keeps data/)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -path ./data -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

clean-data: ## remove data/: the embedded database and the generated dev JWT secret
	rm -rf data

start: ## build the image and run k8s/dev (the API, PostgreSQL, Redis) on kubectl's current cluster
	@$(KUBE_CONTEXT); case "$$context" in $(LOCAL_CLUSTER)) ;; *) [ -n "$(IMAGE)" ] || { \
		echo "make start: '$$context' is not a kind or minikube cluster, so the image must go through a registry it can pull from: make start IMAGE=registry.example.com/crypto-price-server" >&2; exit 1; } ;; esac
	mkdir -p $(DEV_OVERLAY)
	docker build --iidfile $(DEV_OVERLAY)/image-id .
	@# Tagged with the image's own id: a new build rolls out, an unchanged one changes nothing.
	echo "$(or $(IMAGE),crypto-price-server):dev-$$(cut -c 8-19 $(DEV_OVERLAY)/image-id)" > $(DEV_OVERLAY)/image
	docker tag "$$(cat $(DEV_OVERLAY)/image-id)" "$$(cat $(DEV_OVERLAY)/image)"
	@$(KUBE_CONTEXT); image=$$(cat $(DEV_OVERLAY)/image); case "$$context" in \
		kind-*) load="kind load docker-image $$image --name $${context#kind-}" ;; \
		minikube) load="minikube image load $$image" ;; \
		*) load="docker push $$image" ;; \
	esac; echo "$$load"; $$load
	@# k8s/dev with the image just built in place of the release's (k8s/base's images entry).
	@release=$$($(KUBECTL) kustomize k8s/base | sed -n 's/^ *image: //p' | sort -u); image=$$(cat $(DEV_OVERLAY)/image); \
	printf '%s\n' '# Written by make start: k8s/dev running the image it built.' \
		'resources: [../../k8s/dev]' 'images:' "  - name: $${release%:*}" \
		"    newName: $${image%:*}" "    newTag: $${image##*:}" > $(DEV_OVERLAY)/kustomization.yaml; \
	echo "$(DEV_OVERLAY)/kustomization.yaml: k8s/dev with $$image instead of $$release"
	@# A Job's pod template is immutable: the migration Job is deleted and applied anew.
	$(KUBECTL) -n $(K8S_NAMESPACE) delete job $(MIGRATE_JOB) --ignore-not-found
	$(KUBECTL) apply -k $(DEV_OVERLAY)
	$(KUBECTL) -n $(K8S_NAMESPACE) rollout status statefulset/postgres --timeout=5m
	@# Until the Job succeeds or a try of it fails (PostgreSQL is up by now, so a failed try
	@# is the migration's own fault): `kubectl wait` for complete alone would sit out the
	@# whole timeout on a Job that already failed.
	@echo "waiting for job/$(MIGRATE_JOB) (up to $(MIGRATE_TIMEOUT_SECONDS) s)"; \
	give_up=$$((SECONDS + $(MIGRATE_TIMEOUT_SECONDS))); \
	while :; do \
		tries=$$($(KUBECTL) -n $(K8S_NAMESPACE) get job/$(MIGRATE_JOB) -o jsonpath='{.status.succeeded}/{.status.failed}') || tries=; \
		case "$$tries" in \
			[1-9]*/*) echo "job/$(MIGRATE_JOB) complete"; break ;; \
			*/[1-9]*) problem="failed" ;; \
			*) [ "$$SECONDS" -lt "$$give_up" ] || problem="not complete after $(MIGRATE_TIMEOUT_SECONDS) s" ;; \
		esac; \
		if [ -n "$${problem:-}" ]; then \
			echo "make start: job/$(MIGRATE_JOB) $$problem; its log:" >&2; \
			$(KUBECTL) -n $(K8S_NAMESPACE) logs job/$(MIGRATE_JOB) --all-containers --tail=50 >&2 || true; \
			exit 1; \
		fi; \
		sleep $(JOB_POLL_SECONDS); \
	done
	$(KUBECTL) -n $(K8S_NAMESPACE) rollout status deployment/crypto-price-server --timeout=15m
	@echo
	@echo "The API is up. Reach it from this machine with:"
	@echo "  $(KUBECTL) -n $(K8S_NAMESPACE) port-forward service/crypto-price-server 8000:80"
	@echo "  curl -s http://127.0.0.1:8000/health/ready"
	@echo "make start again deploys your changes; make stop deletes it all, database included."

stop: ## delete what make start created: the namespace, and with it PostgreSQL's and Redis' volumes (data)
	@$(KUBE_CONTEXT); case "$$context" in $(LOCAL_CLUSTER)) ;; *) [ "$(CONTEXT)" = "$$context" ] || { \
		echo "make stop: '$$context' is not a kind or minikube cluster; to delete namespace $(K8S_NAMESPACE) there, confirm with make stop CONTEXT=$$context" >&2; exit 1; } ;; esac
	$(KUBECTL) delete -k k8s/dev --ignore-not-found

manifests: $(STAMP) ## build k8s and k8s/dev with kustomize and validate them (strict) against Kubernetes' schemas
	$(BIN)/kubectl kustomize k8s | $(VALIDATE) | { ! grep . ; }
	$(BIN)/kubectl kustomize k8s/dev | $(VALIDATE) | { ! grep . ; }
	@echo "k8s and k8s/dev build and validate against Kubernetes $(K8S_VERSION)"
