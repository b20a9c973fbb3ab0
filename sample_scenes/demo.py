"""`make demo`: the flash-room shot end to end, then its middle frame at 3840×2160.

    python -m sample_scenes.demo [--out out/demo] [--frames 12] [--samples 4]

Two runs of the headless shot runner on one output folder: the 1280×720 sequence (frames, preview.mp4,
contact_sheet.png), then the still. The second run finds the takes and the backend's store the first one
left, so it only renders. Each run is its own process so each starts from an empty Blender. With no model
weights configured the runner picks the labelled preview engines and says so, with how to get the real ones.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

SIZE = "1280x720"


def shot_command(out: Path, frames: int, samples: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "blender_addon.headless", "flash_room", "--out", str(out),
            "--frames", f"1-{frames}", "--footage-frames", str(frames), "--size", SIZE,
            "--samples", str(samples), *extra]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sample_scenes.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("out/demo"))
    p.add_argument("--frames", type=int, default=12, help="length of the shot (and of the sample footage)")
    p.add_argument("--samples", type=int, default=4, help="Cycles samples (the CPU demo keeps them low)")
    args = p.parse_args(argv)
    if args.frames < 1 or args.samples < 1:
        p.error("--frames and --samples must be at least 1")
    middle = (1 + args.frames) // 2
    runs = [("the shot at " + SIZE, []),
            (f"frame {middle} at 3840x2160", ["--final", "--still", str(middle)])]
    started = time.monotonic()
    for title, extra in runs:
        print(f"\n== demo: {title} ==", flush=True)
        status = subprocess.call(shot_command(args.out, args.frames, args.samples, extra))
        if status != 0:
            print(f"demo: the run for {title} stopped (exit {status}); run `make demo` again to continue "
                  f"from what is in {args.out}", file=sys.stderr)
            return status
    out = args.out.resolve()
    print(f"\ndemo done in {time.monotonic() - started:.0f} s:\n  {out / 'frames'}\n  {out / 'preview.mp4'}\n"
          f"  {out / 'contact_sheet.png'}\n  {out / f'still_{middle:04d}_3840x2160.png'}\n  {out / 'times.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
