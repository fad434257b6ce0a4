# The two commands of the README.  `make test`: build .venv + local ComfyUI (+ headless Chromium), run every test.
# `make run`: provision ComfyUI with this pack and run the shipped workflow on the example portrait.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup setup-browser test run parity
setup:
	bash scripts/setup_env.sh
	$(PY) -m harness.comfy_host provision

setup-browser:
	bash scripts/setup_browser.sh

test: setup setup-browser
	$(PY) -m pytest tests -q -ra

run: setup
	$(PY) scripts/run_facelift.py $(ARGS)

parity: setup
	$(PY) -m facelift_models.parity tests/fixtures/parity/*_*.json $(wildcard ../shared/reference/*_*.json)
