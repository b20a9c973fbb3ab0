"""The runner's final render on a Ray cluster: save the assembled shot, let the cluster render its frames.

The shot is saved as OUT/shot.blend with paths relative to it (the takes sit under OUT/), and
`backend.cluster.render` runs in the backend's Python (Ray lives there, not in Blender's) to spread the
frame chunks over the cluster's Blender nodes. OUT must be on storage every render node mounts at the same
path; each node's Blender Python is `blender_python` (default: this one, as on a farm of identical nodes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import bpy

from blender_addon.headless.backend_process import REPO, find_backend_python
from blender_addon.headless.errors import ShotError


def render_on_cluster(address: str, frames: list[int], folder: Path, out: Path, *, backend_python: str | None,
                      chunk: int = 8, blender_python: str | None = None, log=print) -> dict:
    """Render `frames` (consecutive) of the open scene into `folder` on the cluster; returns the counts."""
    blend = out / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True, relative_remap=True)
    command = [str(find_backend_python(backend_python)), "-m", "backend.cluster.render", "--cluster", address,
               "--blend", str(blend), "--frames", f"{frames[0]}-{frames[-1]}", "--out", str(folder),
               "--blender-python", blender_python or sys.executable, "--chunk", str(chunk)]
    log(f"render: on the cluster at {address}, {chunk} frames a task")
    # Stream the cluster's lines: each finished chunk reaches the log as it lands, not when the shot is done.
    lines: deque[str] = deque(maxlen=20)  # the end is all that is read: the counts line, or the error
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("frames "):
                log(f"render: {line.strip()}")
    counts = _counts(lines)
    if proc.returncode != 0 or counts is None:
        tail = " / ".join(line for line in lines[-3:] if line)
        raise ShotError("render", f"the cluster render failed: {tail}")
    return counts


def _counts(lines) -> dict | None:
    """The JSON line `backend.cluster.render` prints last ({"frames", "kept", "rendered"}), if any."""
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
