# Two environments, as users run it: the backend's (numpy 2, torch, diffusers ...) and Blender's
# (the bpy module, which needs numpy < 2). Each is built once; a stamp file remembers it.
PYTHON ?= python3
BACKEND_VENV := .venv-backend
BLENDER_VENV := .venv-blender
BPY := $(BACKEND_VENV)/bin/python
BLPY := $(BLENDER_VENV)/bin/python
STAMPS := .stamps
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: help setup test test-backend test-blender demo bench addon clean

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
	$(BPY) -m pip install -q -e '.[backend,test]' $(TORCH)
	@touch $@

$(STAMPS)/blender: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(BLPY) || $(PYTHON) -m venv $(BLENDER_VENV)
	$(BLPY) -m pip install -q bpy==5.0.1 'numpy<2' 'pyzmq>=25' 'pytest>=8'
	@touch $@

test: setup
	$(MAKE) test-backend test-blender

test-backend: $(STAMPS)/backend
	$(BPY) -m pytest -q tests/backend

test-blender: $(STAMPS)/blender
	PYTHONPATH=$(CURDIR) $(BLPY) -m pytest -q tests/blender

demo: setup
	PYTHONPATH=$(CURDIR) DSTAGE_BACKEND_PYTHON=$(CURDIR)/$(BPY) $(BLPY) -m sample_scenes.demo --out out/demo

bench: $(STAMPS)/backend $(STAMPS)/blender
	$(BPY) bench/transport.py
	$(BPY) bench/propagate.py
	$(BPY) bench/scaling.py
	$(BPY) bench/upscale_tiles.py
	$(BPY) bench/gpu_stages.py
	PYTHONPATH=$(CURDIR) $(BLPY) bench/take_read.py

clean:
	rm -rf $(STAMPS) $(BACKEND_VENV) $(BLENDER_VENV) dist build
