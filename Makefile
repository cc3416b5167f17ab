# The two commands of the README. Each creates .venv and installs what it needs, so both work on a
# fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
JS_DIR := tests/interop/js

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[fast]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[fast,test]'
	touch $@

$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund --silent

# The broker, and beside it the web console (klamm.console), which prints its URL once it listens.
run: $(STAMP_RUN)
	$(BIN)/klamm broker --listen 127.0.0.1:9092 --data-dir ./data --console 127.0.0.1:8080 \
		--schema-registry 127.0.0.1:8081

test: $(STAMP_TEST) $(JS_DIR)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

lint: $(STAMP_TEST)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(STAMP_TEST)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data
