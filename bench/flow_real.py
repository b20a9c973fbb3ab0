"""Benchmark: how well the propagator's own flows carry each keyframe to the frames of its gap, on real motion.

For every frame t inside a gap, each live keyframe's PLAIN source is warped to t with the flow t -> keyframe the
propagator estimated for t (frames fed in order, gaps prepared, as the stage runs them) and compared with plain
frame t: mean absolute error in grey levels (RGB, 0-255). Reported per clip: over the whole frame, and for the
Blender clip on the moving figure (a mask pass of bench/blender_toon_scene.py: the figure's pixels at t), each
side's and the per-pixel best of the two sides (the propagator chooses a side per region, so the better side is
what it can use; where the figure is hidden behind the pillar in one keyframe only the other can carry it).
Also the share of the figure's pixels carried within 12 grey levels by the better side, and the same error with
no motion at all (the keyframes as they are), which gives the scale. Side by side in the same run, the same with the
direct flow alone (each side's DIS estimate between t and the keyframe, no per-pixel choice of the gap's chained
flow: propagate_sides.CHAIN_MARGIN set out of reach), and the ratio.

Run: PYTHONPATH=. nice -n 10 .venv-backend/bin/python bench/flow_real.py [--clips blender,bunny,bikes] [--frames 49]
Last line: `flow_real: figure <F> (best side <B>, <C>% carried, <R> x direct), frame <A> grey levels (blender); bunny <.>
(<R> x direct); bikes <.> (<R> x direct)`
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from blender_clip import render  # noqa: E402
from real_clips import read_clip  # noqa: E402

from backend.pipelines.flow import sample_map, warp  # noqa: E402
from backend.pipelines.keyframes import KeyframeParams, plan_keyframes  # noqa: E402
from backend.pipelines import propagate_sides  # noqa: E402
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator  # noqa: E402

CLIPS = {"blender": None, "bunny": (960, 540), "bikes": None, "carphone": None}  # name -> size (None: native)
BLENDER_FRAMES = 37
CARRIED = 12.0  # grey levels: a pixel warped within this of frame t counts as carried


def carried_errors(sources, plan, direct_only: bool = False) -> list[dict]:
    """For each frame t inside a gap: {"t", "keys": [k...], "errors": [HxW per key], "still": [HxW per key]}."""
    margin = propagate_sides.CHAIN_MARGIN
    propagate_sides.CHAIN_MARGIN = np.inf if direct_only else margin
    try:
        return _carried_errors(sources, plan)
    finally:
        propagate_sides.CHAIN_MARGIN = margin


def _carried_errors(sources, plan) -> list[dict]:
    # The flows do not depend on the style nor on the blend (guided and confidence estimate them alike); confidence
    # skips the colour models, which only cost time here.
    propagator = Propagator(PropagateParams(blend="confidence"))
    gap, out = None, []
    for t, source in enumerate(sources):
        prev, nxt = plan.bracket(t)
        keys = {k: Keyframe(k, sources[k], {"color": sources[k]}) for k in (prev, nxt) if k is not None}
        if prev is not None and nxt is not None and prev != nxt and (prev, nxt) != gap:
            gap = (prev, nxt)
            propagator.prepare_gap(keys[prev], keys[nxt], iter(sources[prev + 1:nxt]))
        propagator.frame(t, source, keys.get(prev), keys.get(nxt))
        if t in keys:
            continue
        frame = source.astype(np.float32)
        row = {"t": t, "keys": [], "errors": [], "still": []}
        for k, flow in sorted(propagator.key_flows(t).items()):
            warped = warp(sources[k], sample_map(flow, source.shape[1::-1]))
            row["keys"].append(k)
            row["errors"].append(np.abs(warped.astype(np.float32) - frame).mean(axis=2))
            row["still"].append(np.abs(sources[k].astype(np.float32) - frame).mean(axis=2))
        out.append(row)
    return out


def summary(rows, masks=None) -> dict[str, float]:
    """Mean errors over the gaps' frames: the whole frame (sides averaged), and where `masks` (per frame) is given,
    on the mask: sides averaged, the per-pixel better side, its share within CARRIED, and with no motion."""
    frame = np.mean([np.mean(e) for row in rows for e in row["errors"]])
    out = {"frame": float(frame)}
    if masks is None:
        return out
    each, best, carried, still = [], [], [], []
    for row in rows:
        mask = masks[row["t"]]
        if not mask.any():
            continue
        each += [float(e[mask].mean()) for e in row["errors"]]
        better = np.minimum.reduce(row["errors"])[mask]
        best.append(float(better.mean()))
        carried.append(float((better < CARRIED).mean()))
        still.append(float(np.minimum.reduce(row["still"])[mask].mean()))
    out.update(figure=float(np.mean(each)), best=float(np.mean(best)), carried=float(np.mean(carried)),
               still=float(np.mean(still)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", default="blender,bunny,bikes", help="comma-separated: " + ", ".join(CLIPS))
    parser.add_argument("--frames", type=int, default=49, help="frames of each camera clip")
    parser.add_argument("--per-frame", action="store_true", help="print the figure's errors frame by frame")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores", flush=True)
    results, direct = {}, {}
    for clip in args.clips.split(","):
        if clip == "blender":
            sources = render("plain", BLENDER_FRAMES)
            masks = [image[..., 0] > 127 for image in render("mask", BLENDER_FRAMES)]
        else:
            sources, masks = read_clip(clip, args.frames, CLIPS[clip]), None
        plan = plan_keyframes(enumerate(sources), KeyframeParams(interval=12))
        start = time.perf_counter()
        rows = carried_errors(sources, plan)
        seconds = time.perf_counter() - start
        results[clip] = r = summary(rows, masks)
        direct[clip] = d = summary(carried_errors(sources, plan, direct_only=True), masks)
        line = f"{clip}: keyframes {plan.keys}, whole frame {r['frame']:.2f} grey levels (direct flow alone {d['frame']:.2f})"
        if masks is not None:
            line += (f"; figure {r['figure']:.2f} (best side {r['best']:.2f}, {100 * r['carried']:.0f}% within "
                     f"{CARRIED:.0f}; no motion {r['still']:.2f}; direct flow alone {d['figure']:.2f}, best side "
                     f"{d['best']:.2f})")
        print(line + f" [{seconds:.1f} s]", flush=True)
        if args.per_frame and masks is not None:
            for row in rows:
                mask = masks[row["t"]]
                sides = "  ".join(f"{k:3d}: {e[mask].mean():6.2f}" for k, e in zip(row["keys"], row["errors"]))
                print(f"  t {row['t']:3d}  {sides}  best {np.minimum.reduce(row['errors'])[mask].mean():6.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    parts = []
    if "blender" in results:
        r = results["blender"]
        parts.append(f"figure {r['figure']:.2f} (best side {r['best']:.2f}, {100 * r['carried']:.0f}% carried, "
                     f"{r['figure'] / direct['blender']['figure']:.2f} x direct), frame {r['frame']:.2f} grey levels "
                     f"(blender)")
    parts += [f"{clip} {r['frame']:.2f} ({r['frame'] / direct[clip]['frame']:.2f} x direct)"
              for clip, r in results.items() if clip != "blender"]
    print("flow_real: " + "; ".join(parts))


if __name__ == "__main__":
    main()
