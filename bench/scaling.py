"""How cost grows with shot length and resolution, and that memory stays flat as a shot grows.

Each configuration runs in its own process (so peak memory is its own): synthetic frames of a figure on
a green screen with real texture go into a fresh store, then a stage runs embedded, exactly as
`dstage run` does. Printed side by side, in one run:

    time per frame and per megapixel, across resolutions (cost should grow with pixels, not worse);
    peak memory at N and 4N frames (flat: the ratio should stay near 1).

Last line: `scaling: <stage> <ms> ms/MP, length x4 -> time x<T>, peak memory x<M>; 4K/540p per-pixel cost x<C>`
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"540p": (960, 540), "1080p": (1920, 1080), "4K": (3840, 2160)}


def synthetic_frame(frame: int, size: tuple[int, int]) -> np.ndarray:
    """A textured disc moving over a green screen with a little noise, deterministic per frame."""
    w, h = size
    rng = np.random.default_rng(frame)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (20, 190, 40)
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    yy, xx = np.ogrid[:h, :w]
    cx, cy, r = w * (0.3 + (0.004 * frame) % 0.4), h * 0.5, h * 0.3
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    checker = ((xx // 7 + yy // 5) % 2 * 90 + 80).astype(np.uint8)
    texture = np.broadcast_to(checker, (h, w))
    img[inside] = np.stack([texture, texture // 2, texture // 3], -1)[inside]
    return img


def child(stage: str, frames: int, size: tuple[int, int], params: dict) -> dict:
    from backend.ipc.digest import digest_arrays
    from backend.jobs import identify, run_job
    from backend.store import JobSpec, Store

    with tempfile.TemporaryDirectory(prefix="dstage-bench-") as tmp:
        store = Store(tmp)
        digests = []
        for f in range(1, frames + 1):
            arrays = {"color": synthetic_frame(f, size)}
            d = digest_arrays(arrays)
            store.put_input(d, arrays)
            digests.append((f, d))
        spec = JobSpec(stage, params, digests, size)
        identify(spec)
        start = time.perf_counter()
        run_job(store, spec)
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "peak_mb": peak_mb}


def measure(stage: str, frames: int, size_name: str, params: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", stage, str(frames), size_name, json.dumps(params)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    w, h = SIZES[size_name]
    result.update(frames=frames, size=size_name, ms_per_frame=1000 * result["seconds"] / frames,
                  ms_per_mp=1000 * result["seconds"] / frames / (w * h / 1e6))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="matte")
    parser.add_argument("--frames", type=int, default=24, help="N; the length test also runs 4N at 540p")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, frames, size_name, params = args.child
        print(json.dumps(child(stage, int(frames), SIZES[size_name], json.loads(params))))
        return
    params = {"refine": {"feather": 2.0}} if args.stage == "matte" else {}
    n = args.frames
    rows = [measure(args.stage, n, "540p", params), measure(args.stage, 4 * n, "540p", params),
            measure(args.stage, max(n // 4, 4), "1080p", params), measure(args.stage, max(n // 8, 3), "4K", params)]
    print(f"{'size':>6} {'frames':>6} {'ms/frame':>9} {'ms/MP':>7} {'peak MB':>8}")
    for r in rows:
        print(f"{r['size']:>6} {r['frames']:>6} {r['ms_per_frame']:9.1f} {r['ms_per_mp']:7.1f} {r['peak_mb']:8.0f}")
    short, long, _, k4 = rows
    time_ratio = long["seconds"] / short["seconds"]
    mem_ratio = long["peak_mb"] / short["peak_mb"]
    pixel_ratio = k4["ms_per_mp"] / short["ms_per_mp"]
    print(f"scaling: {args.stage} {short['ms_per_mp']:.1f} ms/MP, length x4 -> time x{time_ratio:.2f}, "
          f"peak memory x{mem_ratio:.2f}; 4K/540p per-pixel cost x{pixel_ratio:.2f}")


if __name__ == "__main__":
    main()
