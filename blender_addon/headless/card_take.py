"""The card's take: colour from the stylisation, alpha from the matte, depth from the depth step, as one
take folder (the layout make_card reads). Files are hard-linked where the filesystem allows, else copied.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from backend.ipc.take import Take, TakeInfo


def _png_size(path: Path) -> tuple[int, int] | None:
    """A PNG's (width, height) from its header. A take records its source's size; an upscaled colour layer
    is larger, and the card is sized and searched for feet in the colour's own pixels."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def assemble_card_take(out_dir: str | Path, layers: dict[str, Take]) -> Take:
    """`layers` maps a layer name (color, alpha, depth) to the take that holds it. Frames already in
    `out_dir` are kept; the take's frames are those every source take has."""
    if "color" not in layers:
        raise ValueError("a card take needs a colour layer")
    base = layers["color"].info
    frames = sorted(set.intersection(*(set(t.info.frames) for t in layers.values())))
    if not frames:
        raise ValueError("the takes share no frame; were they made from the same footage?")
    width, height = _png_size(layers["color"].path("color", frames[0])) or (base.width, base.height)
    info = TakeInfo(frame_start=frames[0], frame_end=frames[-1], width=width, height=height,
                    fps=base.fps, layers={name: take.info.layers[name] for name, take in layers.items()},
                    stage="card", job_id="card:" + "+".join(take.info.job_id for take in layers.values()),
                    source={name: str(take.root) for name, take in layers.items()})
    out_dir = Path(out_dir)
    if (out_dir / "take.json").exists() and Take.open(out_dir).info.job_id != info.job_id:
        shutil.rmtree(out_dir)  # made from other takes (new parameters): start it again
    card = Take.create(out_dir, info)
    for frame in frames:
        for name, take in layers.items():
            target = card.path(name, frame)
            if target.is_file():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(take.path(name, frame), tmp)
            except OSError:
                shutil.copyfile(take.path(name, frame), tmp)
            os.replace(tmp, target)
    return card
