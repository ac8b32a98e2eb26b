# styleforge: `make demo` runs the whole stack on the examples; `make test` runs every test.
# Both install what they need first: Python deps into .venv and redis-server from Debian's packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := worker,hed,server,dev

.PHONY: deps redis-server chromium prometheus wrk python3-venv demo gallery bench bench-gpu test test-slow test-unit test-deploy test-integration test-e2e fuzz chaos lint up down clean

deps: $(STAMP) redis-server chromium prometheus

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { $(MAKE) python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Debian packages, installed only when missing (as root, or through sudo).
APT_INSTALL = SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq

redis-server:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; $(APT_INSTALL) redis-server; }

# The e2e tests drive Debian's chromium through Playwright (Playwright's own browser downloads are never used).
chromium:
	@test -x /usr/bin/chromium || { echo "installing chromium"; $(APT_INSTALL) chromium; }

# The metrics tests check both expositions with promtool and scrape the test stack with a real Prometheus server,
# both from Debian's prometheus package.
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { echo "installing prometheus"; $(APT_INSTALL) prometheus; }

# The API load benchmark drives the API with wrk, from Debian's packages.
wrk:
	@command -v wrk >/dev/null || { echo "installing wrk"; $(APT_INSTALL) wrk; }

python3-venv:
	@echo "installing python3-venv"; $(APT_INSTALL) python3-venv

demo: deps
	bash deploy/local/demo.sh

gallery: deps
	bash deploy/local/demo.sh deploy/local/gallery.py

# Every benchmark in one run (about 15 minutes on 2 cores, 7-8 of them bench/quality.py), appended to bench/RESULTS.md.
bench: deps wrk
	$(PY) bench/run.py --write bench/RESULTS.md

# The GPU figures (512/1024 px, batches of 8, FLOP-bound fraction), on a machine with a GPU and TF's CUDA build.
bench-gpu: deps
	$(PY) -m pip install --quiet -e ".[gpu]"
	$(PY) bench/run.py --gpu --write bench/RESULTS.md

test: deps
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -m "not slow"

# The tests marked slow (about 4 minutes on 2 cores): the 256 px cases of the balanced preset's test (its 64 px
# cases run in `make test`) and fair share's control on a worker of its own (fair share off, B waits behind A).
test-slow: deps
	$(PY) -m pytest -q -m slow

test-unit: deps
	$(PY) -m pytest -q -m unit

# deploy/ (Dockerfiles, compose, Kubernetes and KEDA objects, Prometheus, Grafana) checked offline, in seconds.
test-deploy: deps
	$(PY) -m pytest -q tests/unit/test_deploy_manifests.py

test-integration: deps
	$(PY) -m pytest -q -m integration

test-e2e: deps
	$(PY) -m pytest -q -m e2e

fuzz: deps
	$(PY) -m pytest -q -m fuzz tests/fuzz

# The chaos suite: real processes broken on purpose (minutes); prints its report and keeps it in run/chaos.txt.
chaos: deps
	mkdir -p run && rm -f run/chaos.txt
	STYLEFORGE_CHAOS_REPORT=run/chaos.txt $(PY) -m pytest -q -s -m chaos tests/chaos -p no:cacheprovider
	@cat run/chaos.txt

lint: deps
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

up: deps
	bash deploy/local/stack.sh start

down:
	bash deploy/local/stack.sh stop

clean:
	rm -rf run out .pytest_cache
