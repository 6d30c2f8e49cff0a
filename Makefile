# telcoml: `make demo` and `make test` are all a fresh machine needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
UV      := $(PY) -m uv
WORKDIR ?= telcoml-work
CUSTOMERS ?= 20000
# where studies live: TELCOML_OPTUNA_STORAGE (e.g. PostgreSQL) or the work directory's SQLite file
OPTUNA_STORAGE ?= $(or $(TELCOML_OPTUNA_STORAGE),sqlite:///$(WORKDIR)/optuna.db)

.DEFAULT_GOAL := help
.PHONY: help install install-browser demo test test-all lint format monitor evidently-ui optuna-dashboard console bench lock clean spark-build spark-score bench-spark

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv with the locked dependencies (requirements.lock)

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	@test -x $(BIN)/python || $(UV) venv -q --python $(PY) $(VENV)
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

# The console's browser tests drive Debian's chromium through Playwright (never a downloaded browser).
# Chinese fonts so that the screenshots kept as test artifacts show the Chinese pages.
install-browser: install ## Install Debian's chromium (and CJK fonts) for the console's browser tests (apt; sudo unless root)
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium fonts-noto-cjk; }
	@/usr/bin/chromium --version

demo: install ## Run the main job on embedded defaults (WORKDIR, CUSTOMERS)
	$(BIN)/telcoml demo --workdir $(WORKDIR) --customers $(CUSTOMERS)

test: install ## Fast tests (no slow or Redis-marked ones)
	$(BIN)/pytest -q

test-all: install ## Every test, slow and service-backed ones included (what CI runs)
	$(BIN)/pytest -q -m "" -p no:cacheprovider

lint: install ## Lint and check formatting (ruff, configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Fix what ruff can: import order, formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

monitor: install ## Weekly drift and data-quality reports for last week (exit 3 on an alert)
	$(BIN)/telcoml monitor --workdir $(WORKDIR)

evidently-ui: install ## The Evidently UI on the weekly reports, http://127.0.0.1:8000
	$(BIN)/evidently ui --workspace $(WORKDIR)/monitoring/workspace --port 8000

optuna-dashboard: install ## Optuna's dashboard on the studies (OPTUNA_STORAGE), http://127.0.0.1:8080
	$(BIN)/optuna-dashboard $(OPTUNA_STORAGE) --host 127.0.0.1 --port 8080

console: install ## The web console on the demo's work directory, http://127.0.0.1:8700/console/
	$(BIN)/telcoml console --workdir $(WORKDIR) --port 8700

bench: install ## Feature-store benchmarks (rows/s, memory, online latency); see benchmarks/
	$(BIN)/python benchmarks/bench_features.py

# The production profile (issue 20) on Spark: local mode by default; a cluster by its master URL,
# executors by TELCOML_SPARK_CONF (README, "Production profile (Spark)"). Run on a generated world.
SPARK_MASTER ?= local[2]
spark-build: install ## Indicators as Spark jobs (TELCOML_ENGINE=spark; WORKDIR, SPARK_MASTER)
	TELCOML_ENGINE=spark TELCOML_SPARK_MASTER='$(SPARK_MASTER)' $(BIN)/telcoml build --workdir $(WORKDIR)

spark-score: install ## Every province's CRM file as Spark jobs, partitioned Parquet and CSV (WORKDIR, SPARK_MASTER)
	TELCOML_ENGINE=spark TELCOML_SPARK_MASTER='$(SPARK_MASTER)' $(BIN)/telcoml batch-score --workdir $(WORKDIR)

bench-spark: install ## The Spark path against the pandas path, rows/s and equality (benchmarks/bench_spark.py)
	$(BIN)/python benchmarks/bench_spark.py --master '$(SPARK_MASTER)'

# The production profile's PostgreSQL (README, "Production profile (Spark)"): an MLflow tracking server
# on a PostgreSQL database with its own artifact root, and several processes tuning one Optuna study.
MLFLOW_BACKEND ?= postgresql+psycopg://postgres@127.0.0.1:5432/telcoml_mlflow
MLFLOW_ARTIFACTS ?= $(WORKDIR)/mlflow-server-artifacts
MLFLOW_PORT ?= 5000
TUNING_STORAGE ?= $(or $(TELCOML_OPTUNA_STORAGE),postgresql+psycopg://postgres@127.0.0.1:5432/telcoml_optuna)
WORKERS ?= 2
TASK ?= churn
.PHONY: mlflow-server tune-workers
mlflow-server: install ## MLflow tracking server on PostgreSQL (MLFLOW_BACKEND, created if missing; MLFLOW_ARTIFACTS), http://127.0.0.1:5000
	$(BIN)/python -m core.databases create '$(MLFLOW_BACKEND)'
	$(BIN)/mlflow server --backend-store-uri '$(MLFLOW_BACKEND)' --artifacts-destination '$(MLFLOW_ARTIFACTS)' \
	  --host 127.0.0.1 --port $(MLFLOW_PORT)

tune-workers: install ## Train TASK with WORKERS processes tuning its study on PostgreSQL (TUNING_STORAGE, created if missing)
	$(BIN)/python -m core.databases create '$(TUNING_STORAGE)'
	TELCOML_OPTUNA_STORAGE='$(TUNING_STORAGE)' $(BIN)/telcoml train --task $(TASK) --workers $(WORKERS) --workdir $(WORKDIR)

# The production profile end to end on this machine: the demo's pipeline with production's settings
# (Spark jobs, Feast on Redis loaded by Spark tasks, MLflow on its server, studies on
# PostgreSQL); start the tracking server first (`make mlflow-server` in another terminal).
PROD_WORKDIR ?= telcoml-prod
MLFLOW_URL ?= http://127.0.0.1:$(MLFLOW_PORT)
REDIS_URL ?= 127.0.0.1:6379
.PHONY: production
production: install ## The main job in production mode: Spark, Feast on Redis, MLflow at MLFLOW_URL, studies on PostgreSQL (PROD_WORKDIR)
	$(BIN)/python -m core.databases create '$(TUNING_STORAGE)'
	TELCOML_ENGINE=spark TELCOML_SPARK_MASTER='$(SPARK_MASTER)' TELCOML_ONLINE_STORE=redis \
	TELCOML_REDIS_URL='$(REDIS_URL)' TELCOML_MATERIALIZE=spark TELCOML_MLFLOW_TRACKING_URI='$(MLFLOW_URL)' \
	TELCOML_OPTUNA_STORAGE='$(TUNING_STORAGE)' TELCOML_PROJECT=telcoml_production \
	  $(BIN)/telcoml demo --workdir $(PROD_WORKDIR) --customers $(CUSTOMERS)

# The image's lock holds the main dependencies only, pinned to the versions the tests ran on (-c).
lock: ## Re-resolve requirements.lock (dev) and requirements-runtime.lock (the Bento image) from pyproject.toml
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -q -o requirements.lock
	$(UV) pip compile pyproject.toml --python-version 3.11 -q -c requirements.lock -o requirements-runtime.lock

clean: ## Remove the demo work directory
	rm -rf $(WORKDIR)
