"""Benchmark: keyframe propagation at 960x540 on real photographs under known camera and subject motion.

Keyframes every 12 frames are stylized by a pixel-wise f (the preview grade), so the ideal output at every
frame is f(source). Propagation is timed alone (footage synthesis and metrics are not), single process, on
whatever cores this machine has (the propagator runs its two keyframe sides in two threads). The two baselines run on the same footage in the same run:
warp_crossfade (both keyframes warped by the same flow, blended by time only, as EbSynth + crossfades) and
crossfade (a plain dissolve between keyframes).

Run: PYTHONPATH=. python bench/propagate.py [--frames 49] [--gap 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from temporal_footage import PhotoShot  # noqa: E402

from backend.memory import keep_freed_memory  # noqa: E402
from backend.pipelines.flow import DIS_PRESETS  # noqa: E402
from backend.pipelines.metrics import metrics_report  # noqa: E402
from backend.pipelines.preview import preview_grade  # noqa: E402
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator, bracket  # noqa: E402


def run(shot: PhotoShot, keys: list[int], params: PropagateParams):
    propagator = Propagator(params)
    cache: dict[int, Keyframe] = {}  # at most the two bracketing keyframes
    outputs, seconds, timed = [], 0.0, 0
    for t in range(shot.count):
        prev, nxt = bracket(t, keys)
        wanted = {k for k in (prev, nxt) if k is not None}
        for k in list(cache):
            if k not in wanted:
                del cache[k]
        for k in wanted - set(cache):
            source = shot.frame(k)
            cache[k] = Keyframe(k, source, {"color": preview_grade(source)})
        source = shot.frame(t)
        start = time.perf_counter()
        if prev is not None and nxt is not None and prev != nxt and t == prev + 1:
            between = (shot.frame(i) for i in range(prev + 1, nxt))  # synthesis is not timed
            gap_start = time.perf_counter()
            frames = list(between)
            start += time.perf_counter() - gap_start
            propagator.prepare_gap(cache[prev], cache[nxt], iter(frames))
        layers = propagator.frame(t, source, cache.get(prev), cache.get(nxt))
        if t not in keys:
            seconds += time.perf_counter() - start
            timed += 1
        outputs.append(layers["color"])
    return outputs, timed / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=49)
    parser.add_argument("--gap", type=int, default=12)
    parser.add_argument("--preset", default="balanced", choices=list(DIS_PRESETS))
    parser.add_argument("--check-preset", default="coarse", choices=list(DIS_PRESETS))
    parser.add_argument("--scale", type=float, default=1.0, help="flow estimated at this fraction of the size")
    args = parser.parse_args()
    keep_freed_memory()  # as the backend process does (`dstage`): frames reuse the last frame's buffers
    shot = PhotoShot((960, 540), args.frames)
    keys = list(range(0, args.frames, args.gap))
    if keys[-1] != args.frames - 1:
        keys.append(args.frames - 1)
    sources = [shot.frame(i) for i in range(shot.count)]
    print(f"load average before: {os.getloadavg()[0]:.2f} (the machine is shared; fps falls as it rises)")
    print(f"footage: {shot.count} frames 960x540, keyframes {keys}, {os.cpu_count()} cores; "
          f"DIS {args.preset} (check {args.check_preset}) at {args.scale:g} x size")
    results = {}
    for blend in ("confidence", "warp_crossfade", "crossfade"):
        outputs, fps = run(shot, keys, PropagateParams(blend=blend, flow_preset=args.preset,
                                                        check_preset=args.check_preset, flow_scale=args.scale))
        report = metrics_report(iter(sources), iter(outputs), keys, stylize=preview_grade)
        ideal = metrics_report(iter(sources), (preview_grade(s) for s in sources), keys)
        report["warp_vs_ideal"] = report["warp_error_mean"] / ideal["warp_error_mean"]
        results[blend] = (fps, report)
    print(f"{'':16s}{'fps':>8s}{'PSNR dB':>9s}{'worst dB':>9s}{'warp x src':>11s}{'x ideal':>9s}"
          f"{'sharp':>7s}{'worst':>7s}{'step/med':>9s}")
    for blend, (fps, r) in results.items():
        print(f"{blend:16s}{fps:8.1f}{r['psnr']:9.2f}{r['psnr_worst']:9.2f}{r['warp_ratio']:11.3f}"
              f"{r['warp_vs_ideal']:9.3f}{r['sharpness_kept']:7.3f}{r['sharpness_kept_worst']:7.3f}"
              f"{r['worst_step_over_median']:9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    fps, r = results["confidence"]
    print(f"propagate: {fps:.1f} fps, {r['psnr']:.1f} dB, warp {r['warp_ratio']:.2f} x source, "
          f"sharpness {r['sharpness_kept']:.2f}, worst step {r['worst_step_over_median']:.2f} x median")


if __name__ == "__main__":
    main()
