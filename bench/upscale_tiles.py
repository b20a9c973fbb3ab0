"""Whole-image vs tiled Swin2SR upscaling, side by side: peak memory, time, and how far apart the results are.

A random-weight Swin2SR (the compute and memory are those of trained weights) upscales one frame 4x,
once in a single pass and once in blended tiles, each in its own process so peak memory is its own.
Prints the ratios on its last line. CPU by default; `--device cuda` measures GPU memory instead.
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


def build(folder: Path) -> None:
    import torch
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessor

    torch.manual_seed(0)
    config = Swin2SRConfig(embed_dim=60, depths=[2, 2], num_heads=[6, 6], window_size=8, upscale=4, img_range=1.0)
    Swin2SRForImageSuperResolution(config).eval().save_pretrained(folder)
    Swin2SRImageProcessor(pad_size=8).save_pretrained(folder)


def measure(folder: str, size: int, tile: int, overlap: int, device: str, out: str) -> None:
    import torch

    from backend.loaders.upscale import load_upscaler
    from backend.params import parse_params
    from backend.pipelines.upscale import UpscaleParams, upscale_frame

    torch.set_num_threads(2)
    upscaler = load_upscaler(folder, device=device)
    frame = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    params = parse_params(UpscaleParams, {"scale": 4, "tile": tile, "overlap": overlap})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = upscale_frame(frame, params, upscaler)
    seconds = time.perf_counter() - start
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    np.save(out, result)
    print(json.dumps({"peak_mb": peak, "seconds": seconds}))


def run(folder: str, size: int, tile: int, overlap: int, device: str, out: str) -> dict:
    cmd = [sys.executable, __file__, "--measure", folder, "--size", str(size), "--tile", str(tile),
           "--overlap", str(overlap), "--device", device, "--out", out]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=192, help="input frame side (output is 4x)")
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--measure")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.size, args.tile, args.overlap, args.device, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "swin2sr"
        build(folder)
        whole = run(str(folder), args.size, args.size, 0, args.device, f"{tmp}/whole.npy")
        tiles = run(str(folder), args.size, args.tile, args.overlap, args.device, f"{tmp}/tiled.npy")
        diff = np.abs(np.load(f"{tmp}/whole.npy").astype(int) - np.load(f"{tmp}/tiled.npy").astype(int))
    print(f"input {args.size}x{args.size} -> {4 * args.size}x{4 * args.size}, {args.device}")
    print(f"whole image : peak {whole['peak_mb']:.0f} MB, {whole['seconds']:.2f} s")
    print(f"tiles {args.tile}+{args.overlap}: peak {tiles['peak_mb']:.0f} MB, {tiles['seconds']:.2f} s")
    print(f"memory whole/tiled {whole['peak_mb'] / max(tiles['peak_mb'], 1):.1f}x, "
          f"time tiled/whole {tiles['seconds'] / whole['seconds']:.2f}x, "
          f"max difference {diff.max()} levels (mean {diff.mean():.3f})")


if __name__ == "__main__":
    main()
