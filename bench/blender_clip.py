"""The benchmark's Blender clip: bench/blender_toon_scene.py rendered plainly and as toon with Freestyle ink,
once, by .venv-blender-5.3's Python in a subprocess; the frames are cached in bench/.cache/blender/ (gitignored)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from real_clips import CACHE

HERE = Path(__file__).resolve().parent
BLENDER_PYTHON = HERE.parent / ".venv-blender-5.3" / "bin" / "python"


def render(mode: str, count: int, size=(384, 216)) -> list[np.ndarray]:
    """`count` RGB frames of the scene in `mode` (plain | toon), rendered if not cached."""
    folder = CACHE / "blender" / f"{mode}_{count}_{size[0]}x{size[1]}"
    paths = [folder / f"{i + 1:04d}.png" for i in range(count)]
    if not all(p.is_file() for p in paths):
        if not BLENDER_PYTHON.exists():
            raise FileNotFoundError(f"{BLENDER_PYTHON} is missing: run `make setup` for the Blender clip")
        subprocess.run([str(BLENDER_PYTHON), str(HERE / "blender_toon_scene.py"), str(folder), mode, str(count),
                        str(size[0]), str(size[1])], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
