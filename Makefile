# casemate: `make demo` runs the whole job on the built-in lab; `make test` runs every test.
# Both start from a fresh Debian 12 machine as root and install what they need themselves.

VENV      := .venv/bin
CASEMATE  := $(VENV)/casemate
DEMO_DIR  := reports/demo
DEMO_INV  := .casemate/demo-inventory
DEMO_KEYS := .casemate/keys
LEVEL     ?= 1
# The Debian release of the demo's nodes (bookworm or trixie: `make demo RELEASE=trixie`), and the
# names of its two labs (other names keep two demos on one machine apart).
RELEASE   ?= bookworm
DEMO_LAB  ?= lab
DEMO_K8S  ?= k8s
DEMO_NODE := casemate-$(DEMO_LAB)-1

.PHONY: setup demo demo-down lint unit checks lab-images lab-test molecule test bench docs clean \
	collection ee

# The sub-makes below (`test`, `checks`, `lab-test`) pass SETUP_DONE=1: setup ran once already.
setup:
	@$(if $(SETUP_DONE),:,scripts/host-setup.sh)

# Two Docker hosts and one kubeadm-style Kubernetes node, hardened and verified in one run each,
# then the verify run and the harden it followed exported as a signed evidence bundle and checked.
# Last, a drift: one node's daemon.json edited by hand, `drift` names cis_docker_2_2 (exit 1),
# `harden --only-drifted` fixes only that, and the history shows it fail -> pass (docs/drift.md).
# verify exits 1 when findings remain (at level 1 only the opt-in cis_k8s_1_2_1: kubeadm's health
# probes are anonymous); anything worse (bad input, a host not probed) fails the demo.
demo: setup
	$(CASEMATE) lab up --name $(DEMO_LAB) --nodes 2 --release $(RELEASE)
	$(CASEMATE) lab up --name $(DEMO_K8S) --nodes 1 --profile k8s --release $(RELEASE)
	mkdir -p $(DEMO_INV)
	ln -sfn ../lab/$(DEMO_LAB)/inventory.yml $(DEMO_INV)/docker.yml
	ln -sfn ../lab/$(DEMO_K8S)/inventory.yml $(DEMO_INV)/k8s.yml
	$(CASEMATE) harden -i $(DEMO_INV) --level $(LEVEL)
	$(CASEMATE) verify -i $(DEMO_INV) --level $(LEVEL) --report-dir $(DEMO_DIR) || [ $$? -eq 1 ]
	[ -f $(DEMO_KEYS)/evidence.key ] || $(CASEMATE) evidence keygen -o $(DEMO_KEYS)
	$(CASEMATE) evidence export latest-verify --harden latest-harden \
		--key $(DEMO_KEYS)/evidence.key -o $(DEMO_DIR)/evidence.tar.gz
	$(CASEMATE) evidence verify $(DEMO_DIR)/evidence.tar.gz --pub $(DEMO_KEYS)/evidence.pub
	@echo; echo "drift: $(DEMO_NODE)'s daemon.json edited by hand (icc true), dockerd restarted"
	docker exec $(DEMO_NODE) sh -c 'jq ".icc = true" /etc/docker/daemon.json > /root/daemon.json.new \
		&& cat /root/daemon.json.new > /etc/docker/daemon.json && rm /root/daemon.json.new \
		&& systemctl restart docker'
	$(CASEMATE) drift -i $(DEMO_INV) --level $(LEVEL) --limit $(DEMO_NODE) > $(DEMO_DIR)/drift.txt; \
		rc=$$?; cat $(DEMO_DIR)/drift.txt; [ $$rc -eq 1 ] && grep -q cis_docker_2_2 $(DEMO_DIR)/drift.txt
	$(CASEMATE) harden -i $(DEMO_INV) --level $(LEVEL) --limit $(DEMO_NODE) --only-drifted
	$(CASEMATE) history --control cis_docker_2_2 --host $(DEMO_NODE)
	@echo
	@echo "demo done: reports in $(DEMO_DIR)/ (report.html, report.json, junit.xml, OSCAL, SARIF, CSV, drift.txt);"
	@echo "signed evidence bundle: $(DEMO_DIR)/evidence.tar.gz (public key $(DEMO_KEYS)/evidence.pub; see docs/evidence.md);"
	@echo "the labs keep running ('$(CASEMATE) lab status --name $(DEMO_K8S)'); remove them with 'make demo-down'."

demo-down:
	$(CASEMATE) lab down --name $(DEMO_LAB)
	$(CASEMATE) lab down --name $(DEMO_K8S)
	rm -rf $(DEMO_INV)

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check python tests molecule benchmarks roles
	$(VENV)/mypy
	PATH="$(CURDIR)/$(VENV):$$PATH" $(VENV)/ansible-lint -q

# Unit tests that start Ansible (marked `ansible`: seconds each) run as their own group after the
# rest (milliseconds each), both on two workers.
unit: setup
	$(VENV)/pytest -q -n 2 -m "not ansible" tests/unit
	$(VENV)/pytest -q -n 2 -m ansible tests/unit

# The two node images (Debian 12 and 13), each built once (a cached image is a no-op) and side by
# side: debootstrap and apt spend most of their time waiting on the mirror, and the builds share
# nothing but dockerd (each has a scratch directory of its own). `make -j2 lab-images` builds both
# at once; `make test` builds them while the lint and unit tests run.
LAB_IMAGES := lab-image-bookworm lab-image-trixie
.PHONY: $(LAB_IMAGES)
lab-images: $(LAB_IMAGES)
$(LAB_IMAGES): lab-image-%: setup
	$(CASEMATE) lab build --release $*

# The lab test modules run three at a time, each on a lab of its own (most of their time is spent
# waiting on nodes and Ansible, not on the CPU), the longest modules first (tests/lab/conftest.py:
# LONGEST_FIRST). Some modules run on trixie, the rest on bookworm (docs/testing.md);
# CASEMATE_TEST_RELEASE=trixie runs every module that does not pin its release on trixie.
LAB_WORKERS ?= 3
lab-test: setup
	$(MAKE) --no-print-directory SETUP_DONE=1 -j2 --output-sync=line lab-images
	$(VENV)/pytest -q -m lab -n $(LAB_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30 tests/lab

# The Ansible collection casemate.hardening (docs/fleet.md): built into dist/ from the roles and
# playbooks the wheel ships, then checked as a collection: ansible-test sanity (the tests that run
# offline) and ansible-lint.
COLLECTION := dist/casemate-hardening-$(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' python/casemate/__init__.py).tar.gz
collection: setup
	$(CASEMATE) collection build --output dist
	PATH="$(CURDIR)/$(VENV):$$PATH" scripts/check-collection.sh all $(COLLECTION)

# The execution environment's build context (execution-environment.yml) in build/ee: the wheel and
# the collection in dist/, then `ansible-builder create`. Building the image needs a registry
# (ansible-builder build; docs/fleet.md).
ee: collection
	$(VENV)/pip wheel -q --no-deps -w dist .
	$(VENV)/ansible-builder create -f execution-environment.yml -c build/ee --output-filename Containerfile

molecule: setup
	PATH="$(CURDIR)/$(VENV):$$PATH" $(VENV)/molecule test

# The checks that need no node (lint, unit tests, the collection: one after another) run while
# both node images are built; then the lab tests and molecule side by side (molecule is one
# Ansible process at a time: alone, it would leave one of two cores idle for its two minutes).
checks: setup
	$(MAKE) --no-print-directory SETUP_DONE=1 lint
	$(MAKE) --no-print-directory SETUP_DONE=1 unit
	$(MAKE) --no-print-directory SETUP_DONE=1 collection

test: setup
	$(MAKE) --no-print-directory SETUP_DONE=1 -j3 --output-sync=line checks lab-images
	$(MAKE) --no-print-directory SETUP_DONE=1 -j2 --output-sync=line lab-test molecule

# What the roles and docs repeat of the catalog (shared tag lists, docker_daemon's flag table, the
# role tables in docs/roles.md, docs/controls/): rendered again from the catalog and role defaults.
docs: setup
	$(VENV)/python -m casemate.generated

# Speed of the Ansible strategies and of verify on lab nodes (medians; not part of `make test`).
bench: setup
	$(VENV)/python benchmarks/strategies.py

clean:
	-$(CASEMATE) lab down --name $(DEMO_LAB)
	-$(CASEMATE) lab down --name $(DEMO_K8S)
	rm -rf reports .casemate
