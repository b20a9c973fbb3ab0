"""`python -m blender_addon.headless SCENE --out OUT [options]`: one shot, headless.

    SCENE            a .blend (the card stands on the object named by --spot) or a sample scene: flash_room, garden
    --footage PATH   a video or a folder of numbered images of the character (default: the sample figure on green)
    --final          render at 3840x2160 (into OUT/final)
    --still FRAME    render only that frame (at 3840x2160 with --final) to OUT/still_FRAME_WxH.png
    --set STAGE.KEY=VALUE   a stage parameter, e.g. --set matte.key.screen=blue
    --engine STEP=STAGE     force an engine, e.g. --engine depth=preview_depth
    --as-filmed      the card without relighting (its normal and albedo layers unused)
    --card-shadow MODE  BLENDER (the card casts it), FILMED (the matte's shadow layer on the floor) or BOTH
    --clean-plate IMAGE the empty screen, same camera and light: the matte keys against it (a clean filmed shadow)
    --character IMAGE   with --engine stylize=animate (or vace): the character the video engine animates

Exit status: 0 done, 1 a step failed (the message names the step and frame), 2 bad arguments, 130 interrupted.
Run the same command again after an interruption: finished frames and takes are kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blender_addon.headless.backend_process import BackendUnavailable
from blender_addon.headless.errors import ShotError
from blender_addon.headless.runner import DEFAULT_SERVER, ShotConfig, run_shot


def _pair(text: str, name: str, sep: str) -> tuple[int, int]:
    a, found, b = text.partition(sep)
    try:
        return int(a), int(b if found else a)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} {text!r}: expected two whole numbers like 1{sep}48") from None


def _sets(items: list[str], what: str) -> dict:
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise argparse.ArgumentTypeError(f"{what} {item!r}: expected STAGE.KEY=VALUE (e.g. matte.key.screen=blue)")
        stage, *parents, leaf = key.split(".")
        node = out.setdefault(stage, {})
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m blender_addon.headless", description="Render one shot, headless.")
    p.add_argument("scene", help="a .blend path or a sample scene: flash_room, garden")
    p.add_argument("--out", required=True, help="output folder (frames, preview.mp4, contact_sheet.png, takes)")
    p.add_argument("--footage", type=Path, help="a video or a folder of numbered images (default: the sample figure)")
    p.add_argument("--server", default=DEFAULT_SERVER, help=f"backend address (default {DEFAULT_SERVER})")
    p.add_argument("--no-start", action="store_true", help="never start a backend; fail if none answers")
    p.add_argument("--backend-python", help="the backend environment's python (default: .venv-backend)")
    p.add_argument("--store", type=Path, help="job store of a backend started here (default OUT/store)")
    p.add_argument("--models", help="model config (JSON) for a backend started here")
    p.add_argument("--device", default="cpu", help="device of a backend started here (cpu or cuda)")
    p.add_argument("--frames", help="shot frame range FIRST-LAST (default: the scene's)")
    p.add_argument("--size", help="render size WIDTHxHEIGHT (default: the scene's)")
    p.add_argument("--samples", type=int, help="Cycles samples (default: the scene's)")
    p.add_argument("--final", action="store_true", help="render at 3840x2160")
    p.add_argument("--still", type=int, metavar="FRAME", help="render only this frame")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE")
    p.add_argument("--engine", action="append", default=[], metavar="STEP=STAGE", help="force a step's engine: matte/depth/stylize/normal/albedo/upscale=STAGE; "
                                                                             "stylize=vace or stylize=animate for video diffusion")
    p.add_argument("--card-height", type=float, default=2.6, help="metres the footage frame spans on the card")
    p.add_argument("--depth-scale", type=float, default=0.3, help="metres of relief the depth gives the card")
    p.add_argument("--spot", default="Card Spot", help="object the card stands on (in a .blend)")
    p.add_argument("--footage-frames", type=int, default=48, help="length of the sample footage")
    p.add_argument("--as-filmed", action="store_true",
                   help="the card as filmed: no relighting by its normal and albedo layers (a still is named *_as_filmed)")
    p.add_argument("--card-shadow", choices=("BLENDER", "FILMED", "BOTH"), default="BLENDER",
                   help="the card's shadow: cast by Blender from the scene's lights, the filmed one (the matte's "
                        "shadow layer, green/blue screen) laid on the floor under the card, or both")
    p.add_argument("--clean-plate", type=Path, metavar="IMAGE",
                   help="an image of the empty screen, same camera and light: the matte keys against it, and the "
                        "filmed shadow holds only the figure's shadow")
    p.add_argument("--character", type=Path, metavar="IMAGE",
                   help="with --engine stylize=animate (or vace): an image of the character the video engine "
                        "animates (default: the first diffused keyframe)")
    p.add_argument("--cluster", metavar="ADDRESS", help="render the frames as chunks on a Ray cluster's Blender "
                   "nodes (auto, host:6379, ray://host:10001); OUT must be on storage every node mounts")
    p.add_argument("--cluster-chunk", type=int, default=8, metavar="N", help="frames per cluster task (default 8)")
    p.add_argument("--footage-size", default="270x480", help="WIDTHxHEIGHT of the sample footage (default 270x480)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.cluster_chunk < 1:
            raise argparse.ArgumentTypeError("--cluster-chunk must be 1 or more frames")
        engines = dict(item.split("=", 1) for item in args.engine if "=" in item)
        if len(engines) != len(args.engine):
            raise argparse.ArgumentTypeError("--engine expects STEP=STAGE, e.g. depth=preview_depth")
        config = ShotConfig(
            scene=args.scene, out=Path(args.out), footage=args.footage, server=args.server,
            start_backend=not args.no_start, backend_python=args.backend_python, store=args.store,
            device=args.device, models=args.models, frames=_pair(args.frames, "--frames", "-") if args.frames else None,
            size=_pair(args.size, "--size", "x") if args.size else None, samples=args.samples, final=args.final,
            still=args.still, params=_sets(args.set, "--set"), engines=engines, card_height=args.card_height,
            depth_scale=args.depth_scale, spot=args.spot, footage_frames=args.footage_frames,
            footage_size=_pair(args.footage_size, "--footage-size", "x"), as_filmed=args.as_filmed,
            card_shadow=args.card_shadow, clean_plate=args.clean_plate, character=args.character,
            cluster=args.cluster, cluster_chunk=args.cluster_chunk)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    try:
        run_shot(config)
    except (ShotError, BackendUnavailable) as e:
        print(f"shot: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
