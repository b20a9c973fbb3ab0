"""Feet on the floor on every frame: the card's origin follows the matte's lowest opaque point.

make_card stands the card on the lowest the feet reach over the whole take. On a frame where the figure's
lowest point is higher (a step, a crouch filmed from further away, a figure drifting up the frame), the
feet would float by the difference. Here every frame's lowest opaque row is measured, the difference to
the take's lowest is turned into metres on the card, smoothed over three frames (a median: a one-frame
speck or hole in the matte does not jolt the card, a real step keeps its timing), and keyed on the card's
delta location along Z, so the user's own location stays free to move the card.
"""

from __future__ import annotations

import numpy as np

from backend.ipc.take import Take

MIN_PIXELS = 3  # opaque pixels a row needs to count as the feet (a stray speck does not)
CURVE = ("delta_location", 2)


def lowest_rows(take: Take) -> dict[int, int | None]:
    """Each take frame's lowest row holding the matte opaque (None: an empty matte, or no file yet)."""
    from .frames import read_frame

    rows = {}
    for frame in take.info.frames:
        if not take.path("alpha", frame).is_file():
            rows[frame] = None
            continue
        alpha = read_frame(take, "alpha", frame)
        alpha = alpha[..., 0] if alpha.ndim == 3 else alpha
        opaque = np.flatnonzero((alpha >= 128).sum(axis=1) >= MIN_PIXELS)
        rows[frame] = int(opaque[-1]) if opaque.size else None
    return rows


def contact_lifts(rows: dict[int, int | None], frame_height_m: float, image_height: int) -> dict[int, float]:
    """Metres each frame's feet stand above the take's lowest feet (>= 0), smoothed. Frames without a
    matte take their nearest neighbour's value; a take with no matte at all gives no lifts."""
    frames = sorted(rows)
    known = [f for f in frames if rows[f] is not None]
    if not known:
        return {}
    lowest = max(rows[f] for f in known)
    filled = []
    for f in frames:
        nearest = min(known, key=lambda k: (abs(k - f), k)) if rows[f] is None else f
        filled.append((lowest - rows[nearest]) * frame_height_m / image_height)
    values = np.asarray(filled, np.float64)
    padded = np.concatenate([values[:1], values, values[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return {f: float(v) for f, v in zip(frames, smooth)}


def lowest_margin(rows: dict[int, int | None], image_height: int) -> float | None:
    """The share of the frame's height below the lowest feet over the whole take (None: no matte)."""
    known = [r for r in rows.values() if r is not None]
    return (image_height - 1 - max(known)) / image_height if known else None


def key_contact(card, lifts: list[float], *, frame_start: int, offset: int, extend: str) -> None:
    """Key the card's delta Z so that each scene frame's feet touch the card's origin. `lifts` are the
    take's frames' lifts in order (contact_lifts), the card standing on the take's lowest feet."""
    from .cards import _channelbag

    clear_contact(card)
    if not lifts:
        return
    shown = list(lifts[offset:])
    if extend == "LOOP":
        shown.append(shown[0])  # the cycle's period is then the take's, not one frame short
    for i, lift in enumerate(shown):
        card.delta_location[2] = -lift
        card.keyframe_insert("delta_location", index=2, frame=frame_start + i)
    channelbag = _channelbag(card)
    curve = channelbag.fcurves.find(CURVE[0], index=CURVE[1]) if channelbag is not None else None
    if curve is not None:
        for point in curve.keyframe_points:
            point.interpolation = "LINEAR"
        if extend == "LOOP":
            curve.modifiers.new("CYCLES")


def clear_contact(card) -> None:
    from .cards import _channelbag

    channelbag = _channelbag(card)
    if channelbag is not None:
        curve = channelbag.fcurves.find(CURVE[0], index=CURVE[1])
        if curve is not None:
            channelbag.fcurves.remove(curve)
    card.delta_location[2] = 0.0
