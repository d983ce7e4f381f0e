# The two commands a newcomer needs: `make up` (run the system) and `make test` (run every test). Both install
# what is missing first. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := uv
STATE_STORE ?= sqlite
PYTEST := $(UV) run --frozen pytest
TEST_DIRS := contracts/tests service-runtime/tests order-service/tests fulfillment-service/tests shipping-mock/tests tools/tests


.PHONY: dead-letters replay-dead-letters bench
.PHONY: help install install-state-stores up down test lint audit test-unit test-stack test-alternates test-launcher drills drills-full
.PHONY: contracts-deps format

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

install: ## Install everything: uv + Python deps, daprd and the dapr CLI (built from Go modules), Kafka jars
	@bash tools/ensure-uv.sh
	$(UV) sync --frozen
	@bash tools/install-dapr.sh
	@bash tools/install-kafka.sh
	@$(MAKE) --no-print-directory contracts-deps

contracts-deps: ## Install the AsyncAPI JSON Schema the contract tests validate against (npm, pinned)
	@npm ci --silent --no-audit --no-fund --prefix contracts/asyncapi-schema

install-state-stores: ## Install the alternate state stores' servers: PostgreSQL and Redis (Debian packages)
	@bash tools/install-state-stores.sh

up: install ## Start Kafka and the three apps with their sidecars; Ctrl-C stops all
	$(UV) run --frozen devstack up --state-store $(STATE_STORE)

down: ## Stop a stack left running (by the PIDs in .run/pids)
	$(UV) run --frozen devstack down

dead-letters: ## List what landed in order-events-dlq and fulfillment-events-dlq, each pending or replayed
	$(UV) run --frozen devstack dead-letters

replay-dead-letters: ## Republish dead letters onto the topic each came from: all pending, or ADDRESSES="topic:p:o ..."
	$(UV) run --frozen devstack replay-dead-letters $(ADDRESSES)

bench: install ## Capacity on its own stack: steady load, rate search, spike, sidecar ceiling -> bench/results/ (~13 min; BENCH_ARGS=--quick ~5)
	$(UV) run --frozen python bench/capacity.py $(BENCH_ARGS)

lint: ## ruff + mypy (strict)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	@# Each test folder on its own: they have no __init__.py, so their conftest modules would collide.
	@for dir in $(wildcard $(TEST_DIRS) tests); do $(UV) run --frozen mypy $$dir || exit 1; done

audit: ## Audit the Python and npm locks for known vulnerabilities
	@# Python: every package uv.lock pins for every workspace member and group, with its hashes (the members themselves
	@# are not on the package index). Hashed pins let pip-audit check them as they are (--disable-pip: nothing is built).
	@requirements=$$(mktemp) && trap 'rm -f "$$requirements"' EXIT && \
	$(UV) export --frozen --quiet --all-packages --all-groups --no-emit-workspace --no-header --format requirements.txt \
		--output-file "$$requirements" && \
	$(UV) run --frozen pip-audit --strict --disable-pip --progress-spinner off --requirement "$$requirements"
	npm audit --prefix contracts/asyncapi-schema --audit-level=low

test-unit: ## Unit and API tests (fakes, no infrastructure)
	$(PYTEST) $(wildcard $(TEST_DIRS))

test-stack: install-state-stores ## Integration and end-to-end tests on the real stack (daprd + Kafka, started by the tests)
	$(PYTEST) tests --ignore=tests/launcher --ignore=tests/drills --ignore=tests/alternates

test-alternates: install-state-stores ## The system on PostgreSQL instead of SQLite (its own stack)
	$(PYTEST) tests/alternates

test-launcher: ## `make up` / Ctrl-C / `make down` as a user runs them (starts its own stacks)
	$(PYTEST) tests/launcher

# Every drill audits every request it sent (tests/support/audit.py); these two targets write the table of the audits
# to tests/drills/REPORT.md (a run of pytest by hand only prints it).
DRILL_REPORT := tests/drills/REPORT.md

drills: install ## Failure drills on the real stack (own stack): broker, crashes, sidecars killed, takeover, backlogs (CI size) -> tests/drills/REPORT.md
	ORDER_PLATFORM_DRILL_REPORT=$(DRILL_REPORT) ORDER_PLATFORM_DRILL_COMMAND="make drills" $(PYTEST) tests/drills -s

drills-full: install ## The drills with the backlog drills at full size: broker paused 5 min at 100/s, carrier down 10 min at 50/s
	ORDER_PLATFORM_DRILL_SIZE=full ORDER_PLATFORM_DRILL_REPORT=$(DRILL_REPORT) ORDER_PLATFORM_DRILL_COMMAND="make drills-full" \
		$(PYTEST) tests/drills -s

test: install install-state-stores lint test-unit test-stack test-alternates test-launcher drills ## Everything: install, lint, unit, real-stack tests (SQLite and PostgreSQL), drills

format: ## Apply ruff's formatting and fixes
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
