# Carepath: `make run` brings the system up locally; `make test` runs every tier of tests.
# Both install what they need (virtual environment, packages, Kafka jars, redis-server).

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHON := $(abspath $(BIN)/python)


.PHONY: all install infra-up infra-down run stop test test-unit lint lint-code bench topics clean console-web chromium

all: install

$(STAMP): pyproject.toml cli/pyproject.toml testkit/pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e ./cli -e ./testkit
	@touch $(STAMP)

install: $(STAMP)

# The console's web app: plain ES modules (no build step); npm ci installs its pinned
# packages (axe-core for the accessibility tests) from the committed package-lock.json.
CONSOLE_WEB := services/console/node_modules/.installed
$(CONSOLE_WEB): services/console/package.json services/console/package-lock.json
	cd services/console && npm ci --no-audit --no-fund
	@touch $(CONSOLE_WEB)

console-web: $(CONSOLE_WEB)

# Debian's Chromium for the browser tests (never a browser download).
chromium:
	bash deploy/chromium.sh

# Kafka (from Maven Central jars, KRaft) and Redis (Debian's redis-server), unless
# KAFKA_BOOTSTRAP_SERVERS / REDIS_URL point elsewhere; then the topics.
infra-up: install
	bash deploy/redis/redis.sh start
	bash deploy/kafka/kafka.sh start
	$(BIN)/carepath topics create

infra-down:
	-bash deploy/kafka/kafka.sh stop
	-bash deploy/redis/redis.sh stop

topics: install
	$(BIN)/carepath topics create

run: infra-up console-web
	bash deploy/run-services.sh

stop: infra-down

# The operations tools (kustomize, kubeconform, promtool, built once from the Go module proxy
# and cached) are fetched in the background while the tests run: promtool's first build takes
# minutes. Their checks (ops-lint) run when both are done.
test: infra-up lint-code console-web chromium
	@mkdir -p .run; nice -n 10 bash deploy/lint/tools.sh all >.run/ops-tools.log 2>&1 & tools=$$!; \
	rc=0; (cd services/console && npm test) || rc=1; \
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pytest tests || rc=1; \
	wait $$tools || { rc=1; tail -50 .run/ops-tools.log; }; \
	bash deploy/lint/ops-lint.sh || rc=1; exit $$rc

test-unit: install
	$(BIN)/python -m pytest tests/unit

lint: lint-code
	bash deploy/lint/ops-lint.sh

lint-code: install
	$(BIN)/ruff check shared services cli testkit tests benchmarks deploy
	$(BIN)/mypy shared/carepath_contracts shared/carepath_runtime cli/carepath testkit/carepath_testkit services/*/carepath_* benchmarks
	$(BIN)/carepath asyncapi --check

bench: infra-up
	$(BIN)/python -m benchmarks.run

clean: infra-down
	rm -rf .run
