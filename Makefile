# wq: fine-grained parallel processing on Kubernetes. `make` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec
.DEFAULT_GOAL := help

# Pinned tool versions: `make tools` builds them into ./bin with `go install`.
HELM_VERSION ?= v3.19.0
KIND_VERSION ?= v0.30.0
KUBERNETES_VERSION ?= v1.34.1
HELM_DOCS_VERSION ?= v1.14.2
CRANE_VERSION ?= v0.22.1
ACTIONLINT_VERSION ?= v1.7.12
# The Go module version of github.com/prometheus/prometheus: v0.316.0 is Prometheus 3.16.0
# (module v0.3MM.P is release v3.MM.P). promtool checks and unit-tests the chart's alerts.
PROMETHEUS_VERSION ?= v0.316.0
# Whose CRDs the chart tests validate the ServiceMonitor and PrometheusRule against.
PROMETHEUS_OPERATOR_VERSION ?= v0.92.0
# Whose ScaledJob CRD the README's KEDA example is validated against (tests/chart).
KEDA_VERSION ?= v2.21.0
# Enforces NetworkPolicy in the kind cluster built here (scripts/kind/netpol-up.sh says why).
KUBE_ROUTER_VERSION ?= v2.1.0
# The dynamic provisioner of the kind cluster built here (scripts/kind/storage-up.sh): the one
# kind's own node images ship; v0.0.30 is the newest the Go module proxy serves.
LOCAL_PATH_VERSION ?= v0.0.30
# The S3-compatible server (`rclone serve s3`) that the tests of s3:// sources read from.
RCLONE_VERSION ?= v1.71.1
# The GCS JSON API server that the tests of gs:// sources read from.
FAKE_GCS_VERSION ?= v1.56.1

BIN := $(CURDIR)/bin
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(BIN):$(VENV)/bin:$(PATH)
export GOBIN := $(BIN)

PY_SOURCES := images/worker/src tests bench scripts
# What the docs' link check reads: every path and anchor they name must exist.
DOC_FILES := README.md chart/README.md chart/values.yaml chart/templates/NOTES.txt

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

# Cheap when all is there; .ci/run and the GitHub workflow run the same script.
.PHONY: prereqs
prereqs: ## Install the host's redis-server, redis-tools and shellcheck where missing (apt-get, as root).
	@scripts/host-prereqs.sh

$(VENV)/.installed: images/worker/pyproject.toml requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e 'images/worker[sources]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the wq package (editable) and the test tools.

# arq, the peer whose worker start-up make bench sets beside wq's, in a venv of its own: it
# pins a redis-py older than wq's. The bench smoke test (make test-unit) runs it too.
ARQ_VENV := $(CURDIR)/.venv-arq

$(ARQ_VENV)/.installed: bench/requirements-arq.txt
	python3 -m venv $(ARQ_VENV)
	$(ARQ_VENV)/bin/python -m pip install -q -r bench/requirements-arq.txt
	touch $@

.PHONY: venv-arq
venv-arq: $(ARQ_VENV)/.installed ## Create .venv-arq with arq (make bench's start-up comparison).

.PHONY: lint
lint: prereqs venv lint-shell lint-workflows lint-docs ## Lint and type-check: shellcheck, actionlint, the docs' links, ruff check, ruff format --check, mypy --strict.
	$(PY) -m ruff check $(PY_SOURCES)
	$(PY) -m ruff format --check $(PY_SOURCES)
	$(PY) -m mypy images/worker/src/wq scripts/check_links.py

.PHONY: lint-docs
lint-docs: venv ## Every path and anchor that the READMEs, values.yaml and NOTES.txt name exists.
	$(PY) scripts/check_links.py $(DOC_FILES)

.PHONY: lint-shell
lint-shell: prereqs ## shellcheck every shell script (*.sh and sh/bash shebangs git knows of).
	scripts/lint-shell.sh

# The GitHub workflow cannot run here (no GitHub, no registry), so actionlint is its only check.
# actionlint skips the shell of `run:` blocks without a word when shellcheck is missing: refuse.
.PHONY: lint-workflows
lint-workflows: prereqs $(BIN)/actionlint ## actionlint (with shellcheck on run: blocks) on .github/workflows.
	@command -v shellcheck >/dev/null 2>&1 || \
	  { echo "shellcheck not found: apt-get install shellcheck (make prereqs does)" >&2; exit 1; }
	$(BIN)/actionlint .github/workflows/*.yml

$(BIN)/actionlint:
	scripts/run-logged.sh "building actionlint $(ACTIONLINT_VERSION)" -- \
	  go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

.PHONY: fmt
fmt: venv ## Format and auto-fix Python sources.
	$(PY) -m ruff format $(PY_SOURCES)
	$(PY) -m ruff check --fix $(PY_SOURCES)

# The pytest-xdist workers of tests/unit and tests/chart: one per core of CI's 2. The unit
# tests marked `slow`, which run many processes each, run after the others, one at a time and
# alone. (Not in one run with --dist loadgroup: with pytest 9.2 it ignores xdist_group,
# pytest-xdist issue 1386.)
TEST_WORKERS ?= 2

.PHONY: test-unit
test-unit: prereqs venv venv-arq $(BIN)/rclone $(BIN)/fake-gcs-server ## Unit, property and fault-injection tests against a real redis-server (and S3 and GCS servers), the docs' checks, every benchmark at a tiny size; TEST_WORKERS=2 at once.
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m 'not slow' tests/unit tests/docs tests/bench
	$(PY) -m pytest -m slow tests/unit

# A few minutes each to build, once (the Go build cache keeps them for a rebuild).
$(BIN)/rclone:
	scripts/run-logged.sh "building rclone $(RCLONE_VERSION)" -- \
	  go install github.com/rclone/rclone@$(RCLONE_VERSION)

$(BIN)/fake-gcs-server:
	scripts/run-logged.sh "building fake-gcs-server $(FAKE_GCS_VERSION)" -- \
	  go install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)

# The README's two pictures of the web page, taken by its browser test (tests/unit/test_ui_page.py).
.PHONY: ui-screenshots
ui-screenshots: prereqs venv ## Rewrite docs/ui-running.png and docs/ui-finished.png from the web page's browser test.
	WQ_TEST_SCREENSHOTS=$(CURDIR)/docs $(PY) -m pytest -m slow tests/unit/test_ui_page.py

.PHONY: test-stress
test-stress: prereqs venv $(BIN)/rclone $(BIN)/fake-gcs-server ## Unit and fault suites 3 times in a row with every core kept busy (ROUNDS=3).
	PYTHON=$(PY) ROUNDS=$${ROUNDS:-3} scripts/test-stress.sh

.PHONY: test-fast
test-fast: prereqs lint test-unit test-chart chart-docs-check ## Every test that needs no cluster.

.PHONY: test
test: test-fast e2e ## Every test: lint, unit, chart, and the e2e suite on a kind cluster.

##@ Chart

CHART := chart
HELM_DOCS_FLAGS := --chart-search-root $(CHART) --sort-values-order file

# The Prometheus Operator's CRDs, where tests/chart expects them; the stamp names the version.
# They come from the operator's Go module: the Go module proxy is what this machine reaches.
CRDS := $(CURDIR)/.cache/crds/prometheus-operator
# KEDA's ScaledJob CRD, for the README's KEDA example.
KEDA_CRDS := $(CURDIR)/.cache/crds/keda

.PHONY: test-chart
test-chart: venv $(BIN)/helm $(BIN)/promtool $(CRDS)/.$(PROMETHEUS_OPERATOR_VERSION) $(KEDA_CRDS)/.$(KEDA_VERSION) ## Chart tests: helm lint --strict, rendering, rejections, API and CRD schemas, promtool on the alerts.
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal tests/chart

$(CRDS)/.$(PROMETHEUS_OPERATOR_VERSION):
	rm -rf $(CRDS) && mkdir -p $(CRDS)
	module="$$(go mod download -json \
	  github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) \
	  | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')" && \
	  cp "$$module"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml $(CRDS)/
	chmod u+w $(CRDS)/*.yaml
	touch $@

$(KEDA_CRDS)/.$(KEDA_VERSION):
	rm -rf $(KEDA_CRDS) && mkdir -p $(KEDA_CRDS)
	module="$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) \
	  | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')" && \
	  cp "$$module"/config/crd/bases/keda.sh_scaledjobs.yaml $(KEDA_CRDS)/
	chmod u+w $(KEDA_CRDS)/*.yaml
	touch $@

.PHONY: chart-docs
chart-docs: $(BIN)/helm-docs ## Regenerate chart/README.md (values table) from values.yaml.
	$(BIN)/helm-docs $(HELM_DOCS_FLAGS)

.PHONY: chart-docs-check
chart-docs-check: $(BIN)/helm-docs ## Fail when chart/README.md is stale (run `make chart-docs`).
	@$(BIN)/helm-docs $(HELM_DOCS_FLAGS) --dry-run --log-level error | diff -u $(CHART)/README.md - \
	  || { echo "chart/README.md is stale: run 'make chart-docs'" >&2; exit 1; }

$(BIN)/helm-docs:
	scripts/run-logged.sh "building helm-docs $(HELM_DOCS_VERSION)" -- \
	  go install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)

# Helm's own release build (its Makefile) stamps the version, and the Kubernetes version that
# `helm template` and `helm lint` assume without a cluster: 1.MINOR for the k8s.io/client-go
# v0.MINOR.x it is built with. Plain `go install` leaves "v3.19" and 1.20, which the chart's
# kubeVersion refuses. $(1) and $(2): that Kubernetes' major and minor.
HELM_LDFLAGS = -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach pkg,pkg/chartutil pkg/lint/rules,-X helm.sh/helm/v3/$(pkg).k8sVersionMajor=$(1) \
    -X helm.sh/helm/v3/$(pkg).k8sVersionMinor=$(2))

$(BIN)/helm:
	gomod="$$(go mod download -json helm.sh/helm/v3@$(HELM_VERSION) \
	  | sed -n 's/^\t"GoMod": "\(.*\)",$$/\1/p')" && \
	  minor="$$(sed -n 's/^\tk8s[.]io\/client-go v0[.]\([0-9]*\)[.].*/\1/p' "$$gomod")" && \
	  test -n "$$minor" && \
	  scripts/run-logged.sh "building helm $(HELM_VERSION)" -- go install \
	  -ldflags "$(call HELM_LDFLAGS,1,$$minor)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Prometheus' own release builds stamp the version (.promu.yml); without it `--version` is empty.
PROMETHEUS_LDFLAGS = -X github.com/prometheus/common/version.Version=$(shell \
  echo $(PROMETHEUS_VERSION) | sed -E 's/^v0[.]3(0?)([0-9]+)[.]/3.\2./')

$(BIN)/promtool:
	scripts/run-logged.sh "building promtool $(PROMETHEUS_VERSION)" -- go install \
	  -ldflags "$(PROMETHEUS_LDFLAGS)" github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

.PHONY: prometheus-tools
prometheus-tools: $(BIN)/promtool $(BIN)/prometheus ## promtool and prometheus at PROMETHEUS_VERSION into ./bin (a long build).

# The e2e suite runs this Prometheus on the host, scraping the chart's exporter in kind.
$(BIN)/prometheus:
	scripts/run-logged.sh "building prometheus $(PROMETHEUS_VERSION)" -- go install \
	  -ldflags "$(PROMETHEUS_LDFLAGS)" github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION)

##@ Distribution

DIST := $(CURDIR)/dist
CHART_VERSION := $(shell sed -n 's/^version: *//p' $(CHART)/Chart.yaml)
APP_VERSION := $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*/\1/p' $(CHART)/Chart.yaml)
CHART_ARCHIVE := $(DIST)/wq-$(CHART_VERSION).tgz
# The local registry (a container, see scripts/kind/registry-up.sh) that the kind cluster
# pulls from; `make push` pushes there unless REGISTRY names another.
REGISTRY_NAME ?= wq-registry
REGISTRY_PORT ?= 5001
LOCAL_REGISTRY := localhost:$(REGISTRY_PORT)
REGISTRY ?= $(LOCAL_REGISTRY)
PUSH_TAG ?= $(APP_VERSION)
REGISTRY_ENV = CRANE=$(BIN)/crane REGISTRY_NAME=$(REGISTRY_NAME) REGISTRY_PORT=$(REGISTRY_PORT)

.PHONY: package
package: $(BIN)/helm ## The chart archive dist/wq-<version>.tgz, after helm lint --strict.
	$(BIN)/helm lint --strict --quiet $(CHART)
	$(BIN)/helm package $(CHART) --destination $(DIST)

.PHONY: registry
registry: docker $(BIN)/crane ## Start the local OCI registry (localhost:5001), the one the kind cluster pulls from.
	$(REGISTRY_ENV) scripts/kind/registry-up.sh

.PHONY: push
push: package images ## Push wq-worker and wq-redis:PUSH_TAG and the chart to REGISTRY (default: the local one).
	$(if $(filter $(LOCAL_REGISTRY),$(REGISTRY)),$(MAKE) --no-print-directory registry >/dev/null)
	REGISTRY=$(REGISTRY) PUSH_TAG=$(PUSH_TAG) HELM=$(BIN)/helm scripts/push.sh \
	  $(WORKER_IMAGE)=wq-worker $(REDIS_IMAGE)=wq-redis --chart $(CHART_ARCHIVE)

$(BIN)/crane: # static: it is also the local registry's image
	scripts/run-logged.sh "building crane $(CRANE_VERSION)" -- \
	  env CGO_ENABLED=0 go install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

##@ Cluster

# A one-node kind cluster for e2e tests. Its name and kubeconfig are its own:
# the user's ~/.kube/config and current context are never touched.
KIND_CLUSTER ?= wq-e2e
KIND_KUBECONFIG ?= $(CURDIR)/.cache/kind/kubeconfig
# Images built here, with fixed tags (kind ignores loaded `latest` images). The one place
# that names them: scripts and tests/e2e require them from the targets below.
PYTHON_BASE_IMAGE ?= wq.local/python:3.11-bookworm
REDIS_IMAGE ?= wq.local/redis:7.0-bookworm
WORKER_IMAGE ?= wq.local/wq-worker:e2e
KIND_ENV = KIND=$(BIN)/kind KIND_CLUSTER=$(KIND_CLUSTER) KUBECONFIG=$(KIND_KUBECONFIG) \
  KIND_VERSION=$(KIND_VERSION) KUBERNETES_VERSION=$(KUBERNETES_VERSION) $(REGISTRY_ENV) \
  KUBE_ROUTER_VERSION=$(KUBE_ROUTER_VERSION) LOCAL_PATH_VERSION=$(LOCAL_PATH_VERSION)

.PHONY: tools
tools: $(BIN)/kind $(BIN)/kubectl $(BIN)/helm $(BIN)/crane ## kind, kubectl, helm and crane at the pinned versions into ./bin.

$(BIN)/kind:
	scripts/run-logged.sh "building kind $(KIND_VERSION)" -- go install sigs.k8s.io/kind@$(KIND_VERSION)

# Built with Kubernetes itself from the Go module proxy (scripts/kind/kube-build).
$(BIN)/kubectl:
	mkdir -p $(BIN)
	cp "$$($(KIND_ENV) scripts/kind/build-binaries.sh kubectl)/kubectl" $@

.PHONY: docker
docker: ## Start the Docker engine, installing Debian's docker.io where there is none (root).
	scripts/docker-up.sh

.PHONY: node-image
node-image: docker ## Build a kind node image without any registry (cold: ~20 min on 2 cores).
	$(KIND_ENV) scripts/kind/build-node-image.sh

.PHONY: kind-up
kind-up: docker $(BIN)/kind $(BIN)/kubectl $(BIN)/crane ## Create the test cluster and its registry (kindest/node if pullable, else `node-image`), with NetworkPolicy and a default StorageClass.
	$(KIND_ENV) scripts/kind/kind-up.sh

.PHONY: kind-down
kind-down: $(BIN)/kind ## Delete the test cluster and its registry; KEEP_CLUSTER=1 keeps them.
	$(KIND_ENV) scripts/kind/kind-down.sh

.PHONY: image-bases
image-bases: docker ## Build the python base and Redis images from Debian packages (root).
	PYTHON_BASE_IMAGE=$(PYTHON_BASE_IMAGE) REDIS_IMAGE=$(REDIS_IMAGE) scripts/images/build-base-images.sh

.PHONY: images
images: image-bases wheelhouse ## Build the worker image on the python base.
	docker build -q --build-arg BASE_IMAGE=$(PYTHON_BASE_IMAGE) -t $(WORKER_IMAGE) \
	  -f images/worker/Dockerfile images/worker >/dev/null

CLUSTER_IMAGES_ENV = WORKER_IMAGE=$(WORKER_IMAGE) REDIS_IMAGE=$(REDIS_IMAGE) \
  PYTHON_BASE_IMAGE=$(PYTHON_BASE_IMAGE) CHART_ARCHIVE=$(CHART_ARCHIVE) \
  CHART_VERSION=$(CHART_VERSION) REGISTRY_PORT=$(REGISTRY_PORT) HELM=$(BIN)/helm

# The cluster pulls from its local registry: every image built here goes there under a tag
# made from the images' content, so that pull policy IfNotPresent never runs a stale image.
.PHONY: cluster-images
cluster-images: images kind-up package
	$(CLUSTER_IMAGES_ENV) scripts/cluster-images.sh

.PHONY: e2e-smoke
e2e-smoke: venv images kind-up package ## Cluster smoke test: node Ready, images from the local registry run, DNS, ClusterIP.
	export $$($(CLUSTER_IMAGES_ENV) scripts/cluster-images.sh) && \
	  KUBECONFIG=$(KIND_KUBECONFIG) $(PY) -m pytest -m e2e tests/e2e/test_cluster_smoke.py

##@ End to end

WHEELHOUSE := images/worker/wheelhouse
E2E_ENV = MAKE="$(MAKE)" PYTHON=$(PY) KIND=$(BIN)/kind KIND_CLUSTER=$(KIND_CLUSTER) \
  KUBECONFIG=$(KIND_KUBECONFIG) $(CLUSTER_IMAGES_ENV)

# pip inside `docker build` reaches no index: the image installs from these wheels.
$(WHEELHOUSE)/.complete: images/worker/pyproject.toml images/worker/build-wheelhouse.sh | $(VENV)/.installed
	images/worker/build-wheelhouse.sh $(PY)
	touch $@

.PHONY: wheelhouse
wheelhouse: $(WHEELHOUSE)/.complete ## Download the worker image's wheels (offline image builds).

.PHONY: e2e
e2e: venv wheelhouse tools $(BIN)/promtool $(BIN)/prometheus $(BIN)/rclone ## e2e tests on kind: cluster up, images, tests/e2e (E2E_WORKERS=4 at once), cluster down (KEEP_CLUSTER=1 keeps it).
	$(E2E_ENV) scripts/e2e.sh $(E2E_ARGS)

.PHONY: demo
demo: prereqs venv wheelhouse tools ## The docs' nine fruits on kind: install, live progress, final `wq status`.
	$(E2E_ENV) scripts/demo.sh

##@ Cleaning

WQ_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wq

.PHONY: clean
clean: ## Remove what the work tree builds: .venv, .venv-arq, bin, .cache, _artifacts, dist, wheelhouse, bench results (and the kind cluster).
	if [ -x $(BIN)/kind ] && [ -f $(KIND_KUBECONFIG) ]; then $(MAKE) --no-print-directory kind-down; fi
	rm -rf $(VENV) $(ARQ_VENV) $(BIN) $(CURDIR)/.cache $(CURDIR)/_artifacts $(WHEELHOUSE) $(DIST) bench/results

.PHONY: clean-cache
clean-cache: ## Remove ~/.cache/wq (node image inputs, binaries) and the images built or pushed here.
	rm -rf "$(WQ_CACHE)"
	images="$$(for ref in 'wq.local/*' '$(LOCAL_REGISTRY)/*'; do \
	  docker images --format '{{.Repository}}:{{.Tag}}' "$$ref" 2>/dev/null; done)"; \
	  if [ -n "$$images" ]; then docker rmi $$images; fi

##@ Benchmark

.PHONY: bench
bench: prereqs venv venv-arq ## Per-item overhead vs a bare lease/complete loop, the docs' client and redis-benchmark's ceiling; start-up vs arq's worker.
	$(PY) bench/throughput.py --out bench/results

# Not part of `make test`: minutes, and gigabytes of temporary files.
.PHONY: scale
scale: prereqs venv wheelhouse tools ## Scale figures: seeding 10M items from a file URL (bar 30 s), Redis bytes per item (bar: item + 8), a 10M range run on kind; then `make shards`.
	$(E2E_ENV) $(PY) bench/scale.py --out bench/results --kind
	$(PY) bench/shards.py --out bench/results

# Not part of `make test`: minutes of runs that assert nothing the autoscaled e2e run does not.
.PHONY: bench-autoscale
bench-autoscale: venv wheelhouse tools ## On kind, one at a time: the e2e autoscaled run, then fixed parallelism 6 and 1 (install to Complete, pod-seconds).
	$(E2E_ENV) E2E_MARK=bench scripts/e2e.sh $(E2E_ARGS)

.PHONY: chaos
chaos: prereqs venv ## 20k items under a SIGKILL every 2 s for 60 s: items lost, extra runs, recovery time.
	$(PY) bench/chaos.py --out bench/results

.PHONY: shards
shards: prereqs venv ## Sharded runs on a local 3-node Redis Cluster: Redis CPU per item by node, 1 shard against 3; a 30M-item run's bytes by node.
	$(PY) bench/shards.py --out bench/results
