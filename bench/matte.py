"""The chroma keyer against rendered truth: green-screen shots from Blender (Cycles) with their true alpha.

    .venv-backend/bin/python bench/matte.py [--size 480x270] [--frames 3] [--stage]

Renders (once, cached under out/bench_matte/) the shots of bench/matte_scene.py in .venv-blender-5.3: an
ordinary shot with the figure's shadow on an unevenly lit cove, motion blur, a figure dressed near the
screen's colour, and the ordinary shot two stops overexposed. The shots are rendered at a reduced size
(default 480x270) to keep rendering time sane on a loaded machine; speed is measured on a frame
resized to 1920x1080. Each shot is keyed with the matte stage's defaults (the difference keyer, its
screen and its fringe radius measured from the shot, solved at full size only in the tiles where alpha can be
fractional; the speed frames take the radius measured on the render at its own size), with the
same keyer solving every pixel at full size (key.solve=full, the reference), and with the older distance keyer,
side by side.

Speed: the keyer alone (chroma_key: linear light, key, fringe colour, interior fill, despill), best of 7 runs
taken in turns with the other keyers, as the last line says (wall time: it follows the load of the shared
machine); its CPU time a frame with OpenCV on one thread (steady under load); the matte stage's whole per-frame
work on the same frame run serially (decode the source PNG, key, refine with the defaults, encode the colour PNG
and the 16-bit alpha PNG as the take stores them), without the disk; and with --stage, `dstage run matte` end to
end (decoding ahead and encoding in its writer thread, as a job does).

IoU: soft IoU of alpha with the truth, per frame; worst is the lowest frame over all shots except the
overexposed one, which is printed on its own line. Edge MAE: mean |alpha - truth| within 2 pixels of the
true outline. Mattes are written next to the renders (matte_*.png) to look at.
The last line:  matte: IoU <x> (worst <y>), edge MAE <z>, <F> fps at 1920x1080
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.imageio import decode_layer, encode_layer  # noqa: E402
from backend.ipc.take import Layer  # noqa: E402
from backend.params import parse_params  # noqa: E402
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key  # noqa: E402
from backend.pipelines.matte_refine import RefineParams, refine_alpha  # noqa: E402
from backend.pipelines.key_fringe_width import with_fringe_radius  # noqa: E402
from backend.pipelines.screen_model import estimate_screen, linear_light  # noqa: E402

SHOTS = ("ordinary", "motion", "bright", "overexposed")
CACHE = ROOT / "out" / "bench_matte"
RENDER_VERSION = {"motion": 3}   # per shot, bumped when bench/matte_scene.py renders it differently (default 2)


def rendered(shot: str, width: int, height: int, frames: int) -> Path:
    folder = CACHE / f"{shot}-{width}x{height}-{frames}f-v{RENDER_VERSION.get(shot, 2)}"
    if not folder.is_dir():
        tmp = folder.with_suffix(".tmp")
        print(f"rendering {shot} ({width}x{height}, {frames} frames) with Cycles ...", flush=True)
        subprocess.run(["nice", "-n", "10", str(ROOT / ".venv-blender-5.3" / "bin" / "python"),
                        str(ROOT / "bench" / "matte_scene.py"), str(tmp), shot, str(width), str(height), str(frames)],
                       check=True, stdout=subprocess.DEVNULL)
        tmp.rename(folder)
    return folder


def load(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for path in sorted((folder / "color").glob("*.png")):
        color = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        truth = cv2.imread(str(folder / "truth" / path.name), cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) / 65535
        out.append((color, truth))
    return out


def soft_iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.minimum(alpha, truth).sum() / max(np.maximum(alpha, truth).sum(), 1e-6))


def edge_band(truth: np.ndarray, width: int = 2) -> np.ndarray:
    solid = (truth > 0.5).astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return (cv2.dilate(solid, kernel) - cv2.erode(solid, kernel)).astype(bool) | ((truth > 0.02) & (truth < 0.98))


def key_shot(frames, params) -> list[np.ndarray]:
    """The shot keyed as the matte stage does: the screen model and the fringe radius measured once per shot."""
    screen = None
    if params.model == "difference":
        linear = [linear_light(c) for c, _ in frames]
        screen = estimate_screen(linear, 1)
        params = with_fringe_radius(params, linear, screen)
    return [chroma_key(color, params, screen)[1] for color, _ in frames]


def native_radius(params, frame: np.ndarray):
    """`params` with the fringe radius the stage measures on `frame` at its own size: the frame resized to
    1920x1080 has edges 4 px soft (bilinear), which crisp 1080p footage does not."""
    linear = linear_light(frame)
    return with_fringe_radius(params, [linear], estimate_screen([linear], 1) if params.model == "difference" else None)


def best_fps(works: dict[str, object], runs: int = 7) -> dict[str, float]:
    """fps of each work, best of `runs`; the works take turns within each run, so a burst of load on the shared
    machine falls on all of them alike."""
    for work in works.values():
        work()   # warm up
    best = dict.fromkeys(works, float("inf"))
    for _ in range(runs):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: 1.0 / t for name, t in best.items()}


def speeds_at_1080(frame: np.ndarray, keyers: dict) -> dict[str, tuple[float, float]]:
    """Per keyer: (keyer fps, matte stage per-frame fps) on `frame` resized to 1920x1080."""
    big = cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    screen = estimate_screen([linear_light(big)], 1)
    keyers = {name: native_radius(params, frame) for name, params in keyers.items()}
    source = encode_layer(Layer("png8"), big)
    refine = parse_params(RefineParams, {})

    def keyer(params):
        return lambda: chroma_key(big, params, screen if params.model == "difference" else None)

    def stage_frame(params):
        def work() -> None:
            color, alpha = chroma_key(decode_layer(Layer("png8"), source), params,
                                      screen if params.model == "difference" else None)
            encode_layer(Layer("png8"), color)
            encode_layer(Layer("png16"), refine_alpha(alpha, refine))
        return work

    keyed = best_fps({name: keyer(params) for name, params in keyers.items()})
    staged = best_fps({name: stage_frame(params) for name, params in keyers.items()}, runs=3)
    return {name: (keyed[name], staged[name]) for name in keyers}


def cpu_ms(frame: np.ndarray, params, runs: int = 7) -> float:
    """The keyer's CPU time a frame (median), OpenCV on one thread: what it costs whatever else runs on the machine."""
    big = cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    screen = estimate_screen([linear_light(big)], 1)
    params = native_radius(params, frame)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        chroma_key(big, params, screen)
        times = []
        for _ in range(runs):
            start = time.process_time()
            chroma_key(big, params, screen)
            times.append(time.process_time() - start)
    finally:
        cv2.setNumThreads(threads)
    return 1000.0 * float(np.median(times))


def stage_fps(frame: np.ndarray, counts: tuple[int, int] = (8, 32)) -> float:
    """The matte stage end to end (`dstage run matte`, defaults: source PNGs decoded a frame ahead, colour and alpha
    PNGs encoded and written in the job's writer thread) on `frame` resized to 1920x1080, a little noise added per
    frame so that every frame is its own input. fps from the difference of two runs' wall times (start-up cancels)."""
    big = cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    radius = native_radius(parse_params(ChromaKeyParams, {}), frame).edge_radius   # as crisp 1080p footage measures
    rng = np.random.default_rng(0)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "footage"
        folder.mkdir()
        for i in range(max(counts)):
            noisy = np.clip(big.astype(np.int16) + rng.integers(-1, 2, big.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i + 1:04d}.png"), cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR))
        for count in counts:
            part = Path(tmp) / f"in{count}"
            part.mkdir()
            for i in range(count):
                (part / f"{i + 1:04d}.png").symlink_to(folder / f"{i + 1:04d}.png")
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "backend.cli", "run", "matte", "--in", str(part), "--out",
                                  str(Path(tmp) / f"out{count}"), "--store", str(Path(tmp) / f"store{count}"),
                                  "--set", f"key.edge_radius={radius}"],
                                 capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if run.returncode:
                raise SystemExit(f"dstage run matte failed:\n{run.stderr[-2000:]}")
            times.append(time.perf_counter() - start)
    return (counts[1] - counts[0]) / (times[1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--stage", action="store_true", help="also time `dstage run matte` end to end at 1920x1080")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    keyers = {"defaults": parse_params(ChromaKeyParams, {}),
              "full solve": parse_params(ChromaKeyParams, {"solve": "full"}),
              "distance keyer": parse_params(ChromaKeyParams, {"model": "distance"})}
    results: dict[str, dict[str, list[tuple[float, float]]]] = {k: {} for k in keyers}
    for shot in SHOTS:
        folder = rendered(shot, width, height, args.frames)
        frames = load(folder)
        for name, params in keyers.items():
            alphas = key_shot(frames, params)
            scores = []
            for i, (alpha, (_, truth)) in enumerate(zip(alphas, frames)):
                band = edge_band(truth)
                scores.append((soft_iou(alpha, truth), float(np.abs(alpha - truth)[band].mean())))
                if name == "defaults":
                    cv2.imwrite(str(folder / f"matte_{i + 1:04d}.png"), np.round(alpha * 255).astype(np.uint8))
                    error = np.abs(alpha - truth)
                    cv2.imwrite(str(folder / f"error_{i + 1:04d}.png"), np.round(error * 255).astype(np.uint8))
            results[name][shot] = scores
            ious = [s[0] for s in scores]
            print(f"  {shot:12s} {name:15s} IoU {np.mean(ious):.3f} (worst {min(ious):.3f}), "
                  f"edge MAE {np.mean([s[1] for s in scores]):.3f}", flush=True)
    sample = load(rendered("ordinary", width, height, args.frames))[0][0]
    speeds = speeds_at_1080(sample, keyers)
    for name in keyers:
        ordinary = [s for shot in SHOTS if shot != "overexposed" for s in results[name][shot]]
        over = results[name]["overexposed"]
        print(f"  {name}: IoU {np.mean([s[0] for s in ordinary]):.3f} (worst {min(s[0] for s in ordinary):.3f}), "
              f"overexposed {np.mean([s[0] for s in over]):.3f}, {speeds[name][0]:.1f} fps at 1920x1080 "
              f"(matte stage per frame: {speeds[name][1]:.1f} fps)")
    print(f"  defaults / full solve speed: x{speeds['defaults'][0] / speeds['full solve'][0]:.2f}; "
          f"defaults / distance keyer: x{speeds['defaults'][0] / speeds['distance keyer'][0]:.2f} "
          f"(renders at {width}x{height}, speed on a frame resized to 1920x1080; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    cpu = {name: cpu_ms(sample, keyers[name]) for name in ("defaults", "full solve")}
    print(f"  keyer CPU a 1920x1080 frame, one core: defaults {cpu['defaults']:.1f} ms, full solve "
          f"{cpu['full solve']:.1f} ms (x{cpu['full solve'] / cpu['defaults']:.2f}): {1000 / cpu['defaults']:.1f} fps "
          f"on a core of its own")
    others = {shot: load(rendered(shot, width, height, args.frames))[0][0] for shot in SHOTS if shot != "ordinary"}
    print("  the same per shot (defaults / full solve, ms): " + ", ".join(
        f"{shot} {cpu_ms(frame, keyers['defaults']):.0f} / {cpu_ms(frame, keyers['full solve']):.0f}"
        for shot, frame in others.items()))
    if args.stage:
        print(f"  dstage run matte end to end, 1920x1080: {stage_fps(sample):.1f} fps (load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)
    ordinary = [s for shot in SHOTS if shot != "overexposed" for s in results["defaults"][shot]]
    print(f"matte: IoU {np.mean([s[0] for s in ordinary]):.3f} (worst {min(s[0] for s in ordinary):.3f}), "
          f"edge MAE {np.mean([s[1] for s in ordinary]):.3f}, {speeds['defaults'][0]:.1f} fps at 1920x1080")


if __name__ == "__main__":
    main()
