# casemate: `make demo` runs the whole job on the built-in lab; `make test` runs every test.
# Both start from a fresh Debian 12 machine as root and install what they need themselves.

VENV      := .venv/bin
CASEMATE  := $(VENV)/casemate
DEMO_DIR  := reports/demo
DEMO_INV  := .casemate/lab/lab/inventory.yml
LEVEL     ?= 1

.PHONY: setup demo demo-down lint unit lab-test molecule test bench clean

setup:
	@scripts/host-setup.sh

demo: setup
	$(CASEMATE) lab up --nodes 2
	$(CASEMATE) harden -i $(DEMO_INV) --level $(LEVEL)
	$(CASEMATE) verify -i $(DEMO_INV) --level $(LEVEL) --report-dir $(DEMO_DIR)
	@echo
	@echo "demo done: reports in $(DEMO_DIR)/report.json and $(DEMO_DIR)/junit.xml;"
	@echo "the lab keeps running ('$(CASEMATE) lab status'); remove it with 'make demo-down'."

demo-down:
	$(CASEMATE) lab down

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check python tests molecule benchmarks roles
	$(VENV)/mypy
	PATH="$(CURDIR)/$(VENV):$$PATH" $(VENV)/ansible-lint -q

unit: setup
	$(VENV)/pytest -q tests/unit

lab-test: setup
	$(VENV)/pytest -q -m lab tests/lab

molecule: setup
	PATH="$(CURDIR)/$(VENV):$$PATH" $(VENV)/molecule test

test: lint unit lab-test molecule

# Speed of the Ansible strategies and of verify on lab nodes (medians; not part of `make test`).
bench: setup
	$(VENV)/python benchmarks/strategies.py

clean:
	-$(CASEMATE) lab down
	rm -rf reports .casemate
