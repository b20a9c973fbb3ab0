"""Reading a take's EXR frame inside Blender, side by side: Blender's own loader (what the add-on uses for
compressed EXR, as the backend writes them) against the small reader of backend/ipc/imagefiles.py (the
add-on's own uncompressed files only, kept for them because it is the faster of the two).

    PYTHONPATH=. .venv-blender-5.3/bin/python bench/take_read.py      (the last line is the ratio)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bpy  # noqa: E402,F401
from backend.ipc.imagefiles import exr_bytes, read_exr  # noqa: E402
from backend.ipc.take import Layer, Take, TakeInfo  # noqa: E402
from blender_addon.scene.frames import _load, read_frame  # noqa: E402

WIDTH, HEIGHT, REPEATS = 1920, 1080, 15


def best_of(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    depth = (np.random.default_rng(0).random((HEIGHT, WIDTH)) * 20).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        take = Take.create(Path(tmp), TakeInfo(1, 1, WIDTH, HEIGHT, layers={"depth": Layer("exr")}))
        take.write_file("depth", 1, exr_bytes({"Y": depth}))
        path = take.path("depth", 1)
        hand = best_of(lambda: read_exr(path)["Y"])
        blender = best_of(lambda: _load(path)[..., 0])
        assert np.array_equal(_load(path)[..., 0], read_frame(take, "depth", 1))
    print(f"take_read: {WIDTH}x{HEIGHT} float EXR frame: Blender's loader {blender * 1000:.1f} ms, "
          f"hand codec {hand * 1000:.1f} ms: {blender / hand:.1f} x the hand codec's time")


if __name__ == "__main__":
    main()
