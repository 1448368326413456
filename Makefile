# snn_perception: two commands do everything on a fresh Debian/Ubuntu machine with Python 3.11.
#   make demo   set up, then run the main job (synthetic dive → rosbag → both nodes → report)
#   make test   set up, then run the whole test suite
# Set-up is idempotent: stamps under .venv/.stamps skip the steps that are already done.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMPS := $(VENV)/.stamps
# The CPU wheel; an unpinned torch pulls a multi-GB CUDA build. Add an index with
# e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" off this machine.
TORCH_SPEC     ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS    ?=
# Test processes (pytest-xdist); each takes whole test files, so a file's module fixtures (a node,
# a trained model) are made once. PYTEST_WORKERS=0 runs everything in one process, as test-all does:
# its timing claims (the budget test's miss rate) are for an otherwise idle machine.
PYTEST_WORKERS ?= 2
# Run environment: loopback-only discovery and our Fast DDS profile (large images over SHM).
ROS_ENV := export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
	FASTDDS_DEFAULT_PROFILES_FILE=$(CURDIR)/config/fastdds_localhost.xml; \
	set +u; source $(CURDIR)/install/setup.bash; set -u; export PYTHONPATH=$(CURDIR):$${PYTHONPATH:-}

step = @printf '\n\033[1m==> %s\033[0m\n' "$(1)"

.PHONY: help setup check-workers test test-all lint demo bench clean distclean

help:
	@echo "make setup      - create .venv, install the dependencies and build the messages (then: source tools/env.sh)"
	@echo "make demo       - set up everything, then run the synthetic-dive demo (report in demo_out/)"
	@echo "make test       - set up everything, then run the test suite on PYTEST_WORKERS processes (default 2; SNN_RUN_SLOW=1 for slow tests)"
	@echo "make test-all   - set up everything, then run the test suite with SNN_RUN_SLOW=1 (training runs, DDP) in one process"
	@echo "make bench      - set up, then benchmark dhz on the CPU (snn-perception bench: 256 and 512 px, T=4, 2 threads)"
	@echo "make lint       - ruff check"
	@echo "make clean      - remove colcon build/install/log (keeps .venv)"
	@echo "make distclean  - clean, and also remove .venv and demo_out"

$(PY):
	$(call step,create virtual environment $(VENV) with $(PYTHON))
	@test -n "$(PYTHON)" || { echo "ERROR: python3.11 not found; install it (apt-get install python3.11 python3.11-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "ERROR: creating $(VENV) failed; on Debian/Ubuntu: apt-get install python3-venv"; exit 1; }
	touch $(VENV)/COLCON_IGNORE

$(STAMPS)/torch: | $(PY)
	$(call step,install $(TORCH_SPEC) (CPU))
	$(PIP) install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)" || { echo "ERROR: step 'install torch' failed"; exit 1; }
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/deps: setup.cfg setup.py $(STAMPS)/torch
	$(call step,install snn_perception with its extras (ros build train test))
	$(PIP) install -q -e ".[ros,build,train,test]" "$(TORCH_SPEC)" || { echo "ERROR: step 'pip install' failed"; exit 1; }
	@command -v cmake >/dev/null || $(PIP) install -q cmake || { echo "ERROR: cmake missing and pip install cmake failed"; exit 1; }
	$(call step,point the ROS wheels' CMake files at this venv's Python headers)
	$(PY) tools/fix_ros_wheel_paths.py $(VENV) || { echo "ERROR: step 'fix ROS wheel paths' failed"; exit 1; }
	@touch $@

install/setup.bash: $(STAMPS)/deps package.xml CMakeLists.txt $(wildcard msg/*.msg srv/*.srv scripts/* env-hooks/*)
	$(call step,colcon build (msg/, srv/, package install))
	@# CMake refuses exported include paths inside the source tree, and the venv's numpy
	@# headers are inside it; building through a symlink keeps the venv outside the
	@# source path CMake sees. (A normal ROS workspace has no venv in the package.)
	mkdir -p build/_src && ln -sfn ../.. build/_src/snn_perception
	set +u; source $(VENV)/bin/activate; set -u; export AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) CMAKE_PREFIX_PATH=$(CURDIR)/$(VENV); \
	  colcon build --base-paths build/_src --symlink-install \
	    --cmake-args -DPython3_EXECUTABLE=$(CURDIR)/$(PY) -DBUILD_TESTING=OFF \
	    || { echo "ERROR: step 'colcon build' failed (see log/latest_build)"; exit 1; }
	@touch $@

setup: install/setup.bash

# Refused before the set-up, not after minutes of it.
check-workers:
	@[[ "$(PYTEST_WORKERS)" =~ ^([0-9]+|auto|logical)$$ ]] || { echo "ERROR: PYTEST_WORKERS=$(PYTEST_WORKERS): give a number of test processes (0 runs one process), auto or logical"; exit 2; }

test: check-workers setup
	$(call step,run the test suite)
	$(ROS_ENV); $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-all: setup
	$(ROS_ENV); SNN_RUN_SLOW=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMPS)/deps
	$(PY) -m ruff check .

# Replaced by the replay issue: the synthetic-dive demo.
demo: setup
	$(call step,demo)
	$(ROS_ENV); $(PY) -m snn_perception.cli demo $(if $(BAG),--bag $(BAG)) $(if $(DATA),--data $(DATA)) --out demo_out

bench: setup
	$(ROS_ENV); $(PY) -m snn_perception.cli bench

clean:
	rm -rf build install log

distclean: clean
	rm -rf $(VENV) demo_out
