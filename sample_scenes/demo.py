"""`make demo`: the flash-room shot end to end, then its middle frame at 3840×2160.

    python -m sample_scenes.demo [--out out/demo] [--frames 12] [--samples 4]

Three runs of the headless shot runner on one output folder: the 1280×720 sequence (frames, preview.mp4,
contact_sheet.png), the 4K still, then the middle frame again with the card as filmed (no relighting), put
beside the relit one and their difference in relight_before_after.png. Later runs find the takes and the
backend's store the first one left, so they render (and upscale the card's textures for the 4K frame). The
sample footage is 608×1080, tall enough that the 4K frame shows the card's texture at its own resolution.
Each run is its own process so each starts from an empty Blender. With no model weights configured the
runner picks the labelled preview engines and says so, with how to get the real ones.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

SIZE = "1280x720"
FOOTAGE_SIZE = "608x1080"


def shot_command(out: Path, frames: int, samples: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "blender_addon.headless", "flash_room", "--out", str(out),
            "--frames", f"1-{frames}", "--footage-frames", str(frames), "--footage-size", FOOTAGE_SIZE, "--size", SIZE,
            "--samples", str(samples), *extra]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sample_scenes.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--frames", type=int, default=12, help="length of the shot (and of the sample footage)")
    p.add_argument("--samples", type=int, default=4, help="Cycles samples (the CPU demo keeps them low)")
    p.add_argument("--server", help="backend address (default: the shot runner's; one is started when none answers)")
    args = p.parse_args(argv)
    if args.frames < 1 or args.samples < 1:
        p.error("--frames and --samples must be at least 1")
    middle = (1 + args.frames) // 2
    runs = [("the shot at " + SIZE, []),
            (f"frame {middle} at 3840x2160", ["--final", "--still", str(middle)]),
            (f"frame {middle} as filmed (before relighting)", ["--still", str(middle), "--as-filmed"])]
    started = time.monotonic()
    for title, extra in runs:
        print(f"\n== demo: {title} ==", flush=True)
        server = ["--server", args.server] if args.server else []
        status = subprocess.call(shot_command(args.out, args.frames, args.samples, extra + server))
        if status != 0:
            print(f"demo: the run for {title} stopped (exit {status}); run `make demo` again to continue "
                  f"from what is in {args.out}", file=sys.stderr)
            return status
    out = args.out.resolve()
    mean, p99 = before_after(out / f"still_{middle:04d}_{SIZE}_as_filmed.png", out / "frames" / f"{middle:04d}.png",
                             out / "relight_before_after.png")
    print(f"relighting changed the middle of frame {middle} by {mean:.1f} levels on average, {p99:.0f} at the 99th "
          f"percentile (relight_before_after.png: as filmed, relit, difference ×{DIFFERENCE_GAIN})")
    print(f"\ndemo done in {time.monotonic() - started:.0f} s:\n  {out / 'frames'}\n  {out / 'preview.mp4'}\n"
          f"  {out / 'contact_sheet.png'}\n  {out / f'still_{middle:04d}_3840x2160.png'}\n"
          f"  {out / 'relight_before_after.png'}\n  {out / 'times.txt'}")
    return 0


DIFFERENCE_GAIN = 8  # the preview's relighting changes a few levels: amplified so the eye finds where


def before_after(before: Path, after: Path, out: Path) -> tuple[float, float]:
    """The middle of the frame as filmed (left), relit (middle) and their difference ×DIFFERENCE_GAIN
    (right), side by side. Returns the mean and the 99th percentile of the difference in 8-bit levels."""
    import numpy as np

    from blender_addon.headless.images import read_pixels, write_png

    halves = []
    for path in (before, after):
        pixels = read_pixels(path)[..., :3]
        width = pixels.shape[1]
        halves.append(pixels[:, width // 4: width - width // 4])
    if halves[0].shape != halves[1].shape:
        raise ValueError(f"{before} and {after} differ in size; render both at the same --size")
    difference = np.abs(halves[1] - halves[0])
    gap = np.ones((halves[0].shape[0], 8, 3), np.float32)
    panels = [halves[0], gap, halves[1], gap, np.clip(difference * DIFFERENCE_GAIN, 0.0, 1.0)]
    write_png(out, np.round(np.concatenate(panels, axis=1) * 255).astype(np.uint8))
    levels = difference.max(-1) * 255
    return float(levels.mean()), float(np.percentile(levels, 99))

if __name__ == "__main__":
    sys.exit(main())
