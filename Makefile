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

.PHONY: install demo test test-ros lint bench clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/grasp-ros-demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q test

# ROS 2 integration tests: source a ROS 2 install first, e.g.
#   ROS_SETUP=/opt/ros/jazzy/setup.bash make test-ros
test-ros: $(STAMP)
	bash -c 'source "$${ROS_SETUP:?set ROS_SETUP to your ROS 2 setup.bash}" && \
		pytest -q -m ros test'

bench: $(STAMP)
	$(BIN)/grasp-ros-bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info out .pytest_cache .ruff_cache
