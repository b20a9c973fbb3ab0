"""The sample scenes and the sample footage, run from their files in the checkout.

The runner never imports `sample_scenes`: it loads a scene's script by path and calls its `build`, so
the add-on's tree depends on nothing outside Blender's Python and the wire (the scripts' own imports
need the checkout on the path, as the runner does anyway).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from blender_addon.headless.backend_process import REPO
from blender_addon.headless.errors import ShotError

SAMPLES = REPO / "sample_scenes"
SAMPLE_SCENES = ("flash_room", "garden")  # each script's build(scene, frames) -> {"scene", "card_spot", ...}


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dstage_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_scene(name: str) -> ModuleType:
    path = SAMPLES / f"{name}.py"
    if name not in SAMPLE_SCENES or not path.is_file():
        raise ShotError("scene", f"unknown scene {name!r}: give a .blend path or one of {', '.join(SAMPLE_SCENES)}")
    return load_script(path)


def sample_footage() -> ModuleType:
    """sample_scenes/footage.py: render_footage(out_dir, frames, size, mp4) renders the figure on green."""
    return load_script(SAMPLES / "footage.py")
