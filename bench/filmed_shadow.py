"""The filmed shadow against the shadow the figure really casts, and against Blender's shadow of the card.

    .venv-backend/bin/python bench/filmed_shadow.py [--size 480x270] [--frames 2] [--picture FILE]

bench/filmed_shadow_scene.py renders bench/matte_scene.py's ordinary green-screen shot (the footage), the same
figure on a grey cove (the truth: the shadow it casts on the floor) and the grey cove alone. The matte stage
keys the footage with shadow=true into a take; a card of it stands where the figure's frame was, in the grey
cove without the figure, with Blender's shadow (the card casts from the same key light) and with the filmed one.
On the floor (below the wall, outside the figure's matte), a pixel is in shadow where it is under 85% of the
grey cove alone. Printed: each method's shadow IoU against the truth and the mean darkening inside the true
shadow, side by side. Renders are cached under out/bench_filmed_shadow/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.ipc.take import Take  # noqa: E402

CACHE = ROOT / "out" / "bench_filmed_shadow"
BLENDER_PY = ROOT / ".venv-blender-5.3" / "bin" / "python"
IN_SHADOW = 0.85  # a floor pixel under this share of the empty cove's brightness is in shadow
RENDER_VERSION = 2
SAMPLES_NOTE = "24 samples, denoised"  # bench/filmed_shadow_scene.py's SAMPLES


def blender(what: str, out: Path, width: int, height: int, frames: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(["nice", "-n", "10", str(BLENDER_PY), str(ROOT / "bench" / "filmed_shadow_scene.py"), what,
                    str(out), str(width), str(height), str(frames)], check=True, env=env, stdout=subprocess.DEVNULL)


def read(path: Path, colour: bool = False) -> np.ndarray:
    """A 16-bit render as float: its brightness (the mean of R, G, B), or with `colour` its BGR."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535.0
    return image if colour else image.mean(-1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="480x270")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--picture", type=Path,
                        help="write truth | filmed (clean plate) over filmed | Blender's, the last frame, here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    out = CACHE / f"{width}x{height}-{args.frames}f-v{RENDER_VERSION}"
    if not (out / "plate").is_dir():
        print(f"rendering the set ({width}x{height}, {args.frames} frames) with Cycles ...", flush=True)
        blender("set", out, width, height, args.frames)
    for take, extra in (("take", []), ("take_plate", ["--set", "key.clean_plate=true",
                                                      "--side", f"clean_plate={out / 'clean_plate.png'}"])):
        if not (out / take / "take.json").is_file():
            subprocess.run([sys.executable, "-m", "backend.cli", "run", "matte", "--in", str(out / "footage"),
                            "--out", str(out / take), "--set", "shadow=true", *extra], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not (out / "card_FILMED_plate").is_dir():
        print("rendering the cards ...", flush=True)
        blender("cards", out, width, height, args.frames)

    take = Take.open(out / "take")
    floor_from = json.loads((out / "set.json").read_text())["floor_from_row"]
    scores = {"FILMED": [], "FILMED_plate": [], "BLENDER": []}
    darkening = {"truth": [], "FILMED": [], "FILMED_plate": [], "BLENDER": []}
    import cv2

    panels = None
    for frame in range(1, args.frames + 1):
        name = f"{frame:04d}.png"
        plate = np.maximum(read(out / "plate" / name), 1e-4)
        alpha = cv2.imread(str(take.path("alpha", frame)), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535.0
        figure = cv2.dilate((alpha > 0.05).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        floor = np.zeros_like(figure)
        floor[floor_from:] = True
        floor &= ~figure
        ratio = {"truth": read(out / "truth" / name) / plate}
        for mode in scores:
            ratio[mode] = read(out / f"card_{mode}" / name) / plate
        truth = floor & (ratio["truth"] < IN_SHADOW)
        for mode in scores:
            scores[mode].append(iou(floor & (ratio[mode] < IN_SHADOW), truth))
        for key in darkening:
            darkening[key].append(float(1 - ratio[key][truth].mean()))
        panels = [read(out / f, colour=True)[height * 2 // 5:]  # the floor and the figure's legs
                  for f in (f"truth/{name}", f"card_FILMED_plate/{name}", f"card_FILMED/{name}", f"card_BLENDER/{name}")]

    print(f"true shadow: {100 * np.mean(darkening['truth']):.0f}% darker on {len(darkening['truth'])} frames; "
          f"filmed: {100 * np.mean(darkening['FILMED']):.0f}% (with the clean plate "
          f"{100 * np.mean(darkening['FILMED_plate']):.0f}%), Blender's card shadow: "
          f"{100 * np.mean(darkening['BLENDER']):.0f}% there")
    if args.picture and panels:
        panels = [np.clip(p, 0, 1) for p in panels]  # the PNGs are display-referred
        picture = np.concatenate([np.concatenate(panels[:2], axis=1), np.concatenate(panels[2:], axis=1)], axis=0)
        cv2.imwrite(str(args.picture), (picture * 255).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    seconds = json.loads((out / "card_seconds.json").read_text())
    print(f"render time a frame, best of 3 taking turns: Blender's {seconds['BLENDER']:.2f} s, filmed "
          f"{seconds['FILMED']:.2f} s (x{seconds['FILMED'] / seconds['BLENDER']:.2f}; Cycles {SAMPLES_NOTE}, "
          f"load {os.getloadavg()[0]:.1f})")
    filmed, plate, own = (float(np.mean(scores[k])) for k in ("FILMED", "FILMED_plate", "BLENDER"))
    print(f"filmed shadow: IoU with the shadow the figure casts {filmed:.3f}, with a clean plate {plate:.3f}, "
          f"Blender's card shadow {own:.3f} ({filmed / max(own, 1e-9):.2f}x, {plate / max(own, 1e-9):.2f}x), "
          f"{width}x{height}")


if __name__ == "__main__":
    main()
