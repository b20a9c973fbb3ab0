# The Blender extension zip. The lead's Makefile includes this file: `include blender_addon/build.mk`.
# Its python needs pip and network access to PyPI (it downloads the pyzmq wheels the manifest lists).
ADDON_BUILD_PY ?= $(or $(wildcard .venv-blender/bin/python),python3)

addon:
	$(ADDON_BUILD_PY) blender_addon/build.py --out dist
