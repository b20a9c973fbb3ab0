"""Render some frames of a saved shot: what one cluster task runs on a node with Blender.

    python -m blender_addon.headless.render_chunk OUT/shot.blend --frames 9-16 --out OUT/frames

The .blend is the shot as the runner assembled it (card, lights, render settings), saved next to its
takes with relative paths, so any node that mounts the shot's folder renders exactly what the runner
would. Frames already in the folder are kept (each is written under a temporary name and renamed).
Prints one JSON line: {"frames", "kept", "rendered"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from blender_addon.headless.__main__ import _pair  # the runner's own FIRST-LAST parsing

    parser = argparse.ArgumentParser(prog="render_chunk", description=__doc__.split("\n\n")[0])
    parser.add_argument("blend", type=Path)
    parser.add_argument("--frames", required=True, help="FIRST-LAST")
    parser.add_argument("--out", required=True, type=Path, help="folder of numbered PNGs")
    args = parser.parse_args(argv)
    try:
        first, last = _pair(args.frames, "--frames", "-")
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    if not args.blend.is_file():
        parser.error(f"{args.blend} does not exist: give the shot.blend the runner saved in its output folder")

    import bpy

    from blender_addon.headless import render
    from blender_addon.headless.errors import ShotError

    bpy.ops.wm.open_mainfile(filepath=str(args.blend))
    scene = bpy.context.scene
    render.configure(scene)
    try:
        counts = render.render_frames(scene, list(range(first, last + 1)), args.out, clean=False)
    except ShotError as e:
        print(f"render_chunk: {e}", file=sys.stderr)
        return 1
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
