# EventFlow developer commands. `make run` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

# The test suite talks to real PostgreSQL and Redis; these are their default local URLs.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/eventflow
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format schema check-deploy ci clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: install, migrate the embedded SQLite database, seed demo data and serve the API on http://$(HOST):$(PORT)
# seed_demo refuses any database but the embedded SQLite one; the leading "-" lets the server start anyway.
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	-$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "EventFlow on http://$(HOST):$(PORT)/api/v1/  docs: http://$(HOST):$(PORT)/api/docs  admin: http://$(HOST):$(PORT)/admin/"
	$(PY) manage.py runserver $(HOST):$(PORT)

## test: install and run the whole suite against PostgreSQL and Redis
# The read replica is a mirror of the test database (settings: TEST MIRROR), so its routing runs.
test: $(VENV)/.installed
	DATABASE_URL=$(TEST_DATABASE_URL) DATABASE_REPLICA_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		CELERY_TASK_ALWAYS_EAGER=true $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## schema: validate the OpenAPI document (fails on any warning)
schema: $(VENV)/.installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

## check-deploy: Django's deployment checklist with production-like settings
check-deploy: $(VENV)/.installed
	DEBUG=false HTTPS=true ALLOWED_HOSTS=tickets.example.com \
		PAYMENT_PROVIDER=stripe STRIPE_SECRET_KEY=sk_live_check STRIPE_WEBHOOK_SECRET=whsec_check \
		SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
		DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
		$(PY) manage.py check --deploy --fail-level WARNING

ci: test lint schema check-deploy
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
