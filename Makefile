# The two commands: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# The browser tests drive Debian's chromium (testing/browser.py names the same path).
CHROMIUM := /usr/bin/chromium
# Where `make run` serves (PORT=9000 make run to change it).
PORT ?= 8000

.PHONY: run test install chromium lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Installed through apt when missing and run as root; otherwise the command is said, and the browser
# tests fail saying it again.
chromium:
	@test -x $(CHROMIUM) || if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium: run 'sudo apt-get install -y chromium'"; \
	fi

# The Procfile's web and worker under honcho, the venv's programs first on PATH; Ctrl-C stops both.
# The local SSOT's post-receive hook is (re)installed by bootstrap to post to the port served here.
run: install
	$(PY) manage.py migrate --noinput
	SSOT_HOOK_URL="$${SSOT_HOOK_URL:-http://127.0.0.1:$(PORT)/webhooks/github}" $(PY) manage.py bootstrap
	@echo "== http://127.0.0.1:$(PORT)/admin/ and /dashboard/ (daphne and the worker under honcho; Ctrl-C stops both)"
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m honcho start --port $(PORT)

test: install chromium
	$(PY) -m ruff check .
	$(PY) -m ruff format --check --quiet .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m amp.jsonschema --check
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check --quiet .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

clean:
	rm -rf $(VENV) var
