# The Blender extension zip. The lead's Makefile includes this file: `include blender_addon/build.mk`.
# Its python (3.11+) needs pip and network access to PyPI (it downloads the pyzmq wheels for both zips).
ADDON_BUILD_PY ?= $(or $(wildcard .venv-blender-5.3/bin/python),python3)

addon:
	$(ADDON_BUILD_PY) blender_addon/build.py --out dist
