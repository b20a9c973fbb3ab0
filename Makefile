# Environments as users run them: the backend's (numpy 2, torch, diffusers ...) and one per Blender
# Python the add-on supports: bpy 4.5 LTS (Python 3.11, numpy < 2) and bpy 5.3 (Python 3.13, numpy 2).
# Each is built once; a stamp file remembers it. BLPY (5.3) is the Blender the demo and benchmarks use.
PYTHON ?= python3.11
PYTHON313 ?= env PYENV_VERSION=3.13.0 python3.13
BACKEND_VENV := .venv-backend
BLENDER_VENV := .venv-blender-5.3
BLENDER45_VENV := .venv-blender-4.5
BPY := $(BACKEND_VENV)/bin/python
BLPY := $(BLENDER_VENV)/bin/python
BLPY45 := $(BLENDER45_VENV)/bin/python
STAMPS := .stamps
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: help setup test test-backend test-blender test-blender-5.3 test-blender-4.5 demo bench addon clean

.DEFAULT_GOAL := help
include blender_addon/build.mk

help:
	@echo "make demo   set everything up and run the sample shot"
	@echo "make test   set everything up and run the whole test suite"
	@echo "make bench  run the CPU benchmarks (bench/)"
	@echo "make addon  build the Blender extension zip into dist/"

setup: $(STAMPS)/backend $(STAMPS)/blender

$(STAMPS)/backend: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(BPY) || $(PYTHON) -m venv $(BACKEND_VENV)
	$(BPY) -m pip install -q --upgrade pip
	$(BPY) -m pip install -q $(TORCH)
	$(BPY) -m pip install -q -e '.[backend,test,cluster]' $(TORCH)
	@touch $@

# the Blender matrix: both stamps (targets that need "a Blender" depend on this one)
$(STAMPS)/blender: $(STAMPS)/blender-5.3 $(STAMPS)/blender-4.5
	@touch $@

$(STAMPS)/blender-5.3: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(BLPY) || $(PYTHON313) -m venv $(BLENDER_VENV)
	$(BLPY) -m pip install -q bpy==5.3.0 'numpy>=2' 'pyzmq>=25' 'pytest>=8'
	@touch $@

$(STAMPS)/blender-4.5: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(BLPY45) || $(PYTHON) -m venv $(BLENDER45_VENV)
	$(BLPY45) -m pip install -q bpy==4.5.15 'numpy<2' 'pyzmq>=25' 'pytest>=8'
	@touch $@

test: setup
	$(MAKE) test-backend test-blender

test-backend: $(STAMPS)/backend $(STAMPS)/blender-5.3  # the cluster render test renders with Blender
	$(BPY) -m pytest -q tests/backend

# the whole Blender suite on each supported Blender Python (about 2 minutes each)
test-blender: test-blender-5.3 test-blender-4.5

test-blender-5.3: $(STAMPS)/blender-5.3
	PYTHONPATH=$(CURDIR) $(BLPY) -m pytest -q tests/blender

test-blender-4.5: $(STAMPS)/blender-4.5
	PYTHONPATH=$(CURDIR) $(BLPY45) -m pytest -q tests/blender

demo: setup
	PYTHONPATH=$(CURDIR) DSTAGE_BACKEND_PYTHON=$(CURDIR)/$(BPY) $(BLPY) -m sample_scenes.demo --out out/demo

bench: $(STAMPS)/backend $(STAMPS)/blender
	$(BPY) bench/transport.py
	$(BPY) bench/propagate.py
	PYTHONPATH=$(CURDIR) $(BPY) bench/propagate_real.py
	$(BPY) bench/scaling.py
	$(BPY) bench/upscale_tiles.py
	$(BPY) bench/cluster.py
	$(BPY) bench/gpu_stages.py
	PYTHONPATH=$(CURDIR) $(BLPY) bench/take_read.py
	PYTHONPATH=$(CURDIR) $(BPY) bench/filmed_shadow.py

clean:
	rm -rf $(STAMPS) $(BACKEND_VENV) $(BLENDER_VENV) $(BLENDER45_VENV) .venv-blender dist build
