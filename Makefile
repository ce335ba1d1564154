# Set-up and everyday commands. `make run` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install migrate demo-data serve test test-fast lint format chromium clean bench

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

.env:
	printf 'DEBUG=1\n' > .env

migrate: install .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

demo-data: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py load_codebook --default
	@$(PY) manage.py shell --no-imports -c "from coding.models import Thread; import sys; sys.exit(0 if Thread.objects.exists() else 1)" \
		|| $(PY) manage.py import_threads sample_data/sample_forum.jsonl.gz --source "Sample forum (synthetic)"
	@$(PY) manage.py shell --no-imports -c "from coding.models import HubModel; import sys; sys.exit(0 if HubModel.objects.exists() else 1)" \
		|| $(PY) manage.py import_hub --from-file sample_data/hub_sample.jsonl
	@$(PY) manage.py shell --no-imports -c "from coding.models import Unit; import sys; sys.exit(0 if Unit.objects.filter(project__slug='demo').exists() else 1)" \
		|| $(PY) manage.py sample demo --size 40 --seed 1 --round Calibration

run: demo-data
	@echo
	@echo "Demo accounts (username password):"
	@grep -v '^#' .demo-credentials
	@echo
	@echo "Serving at http://$(HOST):$(PORT)/ with the task worker; Ctrl-C stops both."
	@trap 'kill 0' INT TERM EXIT; \
		$(PY) manage.py db_worker & \
		$(PY) manage.py runserver $(HOST):$(PORT)

chromium: install
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		$(BIN)/playwright install chromium; \
	fi

test: install chromium
	DEBUG=1 DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	DEBUG=1 $(BIN)/pytest -m "not browser" $(PYTEST_ARGS)

# Every script in bench/ (heavy: 100,000-thread corpora, minutes each; not part of CI).
# BENCH_ARGS narrows it, e.g. BENCH_ARGS="--only coding_bench,coding_page_bench".
bench: install chromium
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles test_db*.sqlite3* .pytest_cache .ruff_cache
