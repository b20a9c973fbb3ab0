"""Guided synthesis of a propagated frame (Propagator's `blend` "guided", the default).

It does not blend warped keyframes' colour at all: it carries each keyframe's local colour model
(backend/pipelines/colour_model.py) to t and applies it to frame t's own pixels, so whatever the style does to
appearance comes from frame t itself, at full sharpness; only the style's residual (what the source lacks: ink lines,
texture) is warped, and that is *chosen* per region from one side (by confidence, with hysteresis so the choice does
not flicker: RegionChoice), never averaged, so nothing comes out doubled or grey. The colour models are chosen with the
same seams: a model fitted where the keyframe has ink partly explains the ink, and a mix of two would draw it twice,
softly. Where the model clearly does not explain the keyframe (ink), the keyframe's colour itself is carried,
nearest-sampled, from the same chosen side: resampling a 2 px line at a fractional offset smears it grey (the ink style
kept 0.52-0.59 of its sharpness mid-gap; 0.91-0.96 so). Ink that follows the keyframe's source edges is not carried at
all but redrawn on frame t's own edges (backend/pipelines/ink_model.py, `ink="edges"`), near the ink carried from the
chosen side: carried, a line lands a pixel or two off frame t's edge, and where the flow fails it tears.
A style whose ink does not follow its source's edges (Freestyle silhouettes) keeps it carried, and where no flow is
trusted redraws it where frame t's colours meet as the keyframes' inked colours do (backend/pipelines/ink_pairs.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from backend.pipelines import ink_model, ink_pairs
from backend.pipelines.colour_model import KeyModel, by_colour_error, colour_bins, solve_by_colour, unit
from backend.pipelines.flow import warp, warp_chosen
from backend.pipelines.propagate_layers import finish, resize
from backend.pipelines.propagate_sides import Side


# guided: the weight of the keyframes' by-colour models of frame t's colours (colour_model.fit_by_colour) against
# the sides' warped local models (confidence x closeness, up to 1): they take over where the flow is unsure.
# bench/propagate_real.py, PSNR pixel-wise bikes/bunny/carphone/Blender: the global fit at 0.02: 47.1/50.4/48.3/
# 50.3; by colour at 0.1: 49.2/52.2/50.2/51.4 (toon +0.1 to +0.5 dB); at 0.3: 50.8/52.6/50.4/51.9, but where a
# disc outruns the flow its ring (test_no_doubled_ink...) came out 5% further from either keyframe's drawing.
# The weight now follows how well the model's bin reproduces the keyframes' own pixels (colour_model.by_colour_error,
# e): from FALLBACK_WEIGHT[0] (a bin far off: a toon style's, where one colour is inked here and flat there) up to
# [1] (a pixel-wise style's, a function of colour), as FALLBACK_SPREAD^2 / (e + FALLBACK_SPREAD^2); a bin with few
# pixels counts FALLBACK_PRIOR_ERROR for BIN_PRIOR of them. On main d29ce47 (pooled fits), pixel-wise 49.93/52.84/
# 50.68/51.57 -> 52.23/53.40/51.22/52.11 dB, toon 29.07/22.58/25.03/23.67 -> 29.09/22.59/25.05/23.68; one weight
# for all at 0.2: 50.99/53.27/51.05/52.05 and 29.08/22.58/25.07/23.67; at 0.3, 51.62/53.41/51.19/52.24 but toon
# 29.04/22.57/25.07/23.65; (0.1, 1.0): Blender 51.95/23.67 (a bin is not exact: too much of it costs too).
FALLBACK_WEIGHT = (0.1, 0.5)
FALLBACK_SPREAD = 0.01      # unit colour (rms)
FALLBACK_PRIOR_ERROR = 0.01  # unit colour squared (0.1 rms)
CHOICE_BLUR = 9     # pixels (analysis size): the residual is chosen per region of about this size, not per pixel
CHOICE_TIME = 0.25   # the choice's score: confidence x (CHOICE_TIME + closeness)
# The other side must be this much more trusted to take a region over (hysteresis). With the ink carried as it
# is, a region changing sides is a visible step: at 1.5 the Blender clip's worst step was 2.25 x median (mid-gap,
# where the arm passes the pillar) and bikes' 5.24; at 3, 1.78 and 3.57 (bunny's 1.84 -> 2.46, its truth's 1.12).
CHOICE_MARGIN = 3.0
SEAM_BLUR = 5       # pixels (analysis size) over which the two sides' residuals are joined at a seam
# Below this confidence a side's residual (ink) fades out. Low: ink is kept even where the flow is unsure
# (fading it at 0.05 left the film clip's figure without lines: sharpness kept 0.53 against 0.64).
RESIDUAL_TRUST = 0.01
# ... but only where the residual is detail: where it is small (the colour model explains the keyframe there, as
# everywhere for a pixel-wise style) it is noise of the fit, which a doubtful flow drags from elsewhere, so there
# it is weighed by the confidence itself. Residual at or above DETAIL_LEVEL (unit RGB, the largest channel) is
# detail; below, in proportion (`residual_detail`). bench/propagate_real.py pixel-wise / toon, against the residual at full
# strength everywhere: bikes 49.61 / 28.97 -> 49.92 / 29.06 dB, bunny 52.27 / 22.56 -> 52.84 / 22.58, carphone
# 50.17 / 24.97 -> 50.67 / 25.03, Blender 51.36 / 23.48 -> 51.56 / 23.51 (sharpness kept 0.98 / 0.96 / 0.95 / 0.91
# on toon, was 0.98 / 1.01 / 0.96 / 0.92); at 0.05 toon gains less, at 0.2 more (carphone 25.10) but the Blender toon
# keeps 0.90 of its sharpness.
DETAIL_LEVEL = 0.1
# Ink is redrawn near the carried ink where a side's confidence reaches this; below it, fading to where no flow
# vouches for anything, wherever frame t has an edge like those the keyframe inks (ink_model's two models).
INK_TRUST = 0.2
# A carried-ink style's ink is redrawn by colour pair (ink_pairs, see loose_ink) in the regions where no
# side's confidence reaches this (if its keyframes' lines are a colour pair's: ink_pairs.AGREEMENT). A hard switch
# (with a SEAM_BLUR seam), not a fade: two lines are never mixed grey. Blender clip, toon: 23.33 dB at 0.5, 23.40 at
# 0.7, 23.48 at 0.9 (sharpness 0.88, 0.89, 0.92); everywhere, 22.76.
LOOSE_TRUST = 0.9
# A carried line is kept only where frame t's colours, within a pixel of it, are a pair the keyframes ink with at least
# this chance (fading in over these bounds): elsewhere it is a ghost left where the figure was. Its stamped colour is
# left out there everywhere, its residual's dark part only where the ink is redrawn (everywhere, the toon render's own
# grain went too: 23.11 dB, sharpness 0.86). Blender clip: 23.12 dB with no line left out, 23.48 so.
LOOSE_VETO = (0.05, 0.2)
# Where they are not, its whole-frame edge model (ink_model `anywhere`) is fitted over every edge of its keyframe,
# most of them not inked (texture), so it is shy near the silhouettes it must draw: its P(ink) over these bounds goes
# from no ink to ink (ink_model.HARD is 0.25-0.5). Blender clip, toon (with lines stamped within 1 px, see
# ASSENT_REACH): 22.75 dB at HARD (sharpness 0.86), 22.80 here (0.93), 22.78 at 0.2-0.3 ...
LOOSE_EDGE_HARD = (0.15, 0.25)
# ... and it draws where no side's confidence reaches this, fading in below it (0.2, as INK_TRUST: 22.73 dB).
LOOSE_EDGE_TRUST = 0.5
# px: a carried-ink style's line is stamped where the other side carries one within this reach (assent_weight).
# Within 1 px the Blender clip gained most (22.80 dB), but a line the two keyframes *drew* apart (5 px in
# test_no_doubled_ink_where_the_two_keyframes_disagree) then came out blended, a second faint line: within 5 px
# each such line is still one side's, drawn as it is (22.75 dB, sharpness 0.94).
ASSENT_REACH = 5


@dataclass
class LooseInk:
    """A carried-ink style's redrawn ink for frame t (loose_ink), all H x W float32 at full size."""

    amount: np.ndarray  # how much of each pixel is ink, as `redrawn_ink` gives it
    colour: np.ndarray  # H x W x 3 unit RGB: the ink's local colour
    keep: np.ndarray | None = None   # by colour pair: how much of a carried line is kept (frame t's colours ink it)
    ghost: np.ndarray | None = None  # ... and where the ink is redrawn, how much of one is a ghost (not kept)


class RegionChoice:
    """Which side's residual each region of a frame takes, remembered from frame to frame for its hysteresis."""

    def __init__(self):
        self._choice: tuple[tuple[int, int], np.ndarray] | None = None   # (keys, last frame's choice)

    def choose(self, first: np.ndarray, second: np.ndarray, keys: tuple[int, int]) -> np.ndarray:
        """Which side's residual each region takes (float32 in [0, 1], 1 = the earlier keyframe's, `first`; a
        soft seam between):
        regions, not pixels (the weights are averaged first), and a region keeps last frame's side until
        the other is CHOICE_MARGIN times more trusted, so the choice does not flicker."""
        box = (CHOICE_BLUR, CHOICE_BLUR)
        a, b = cv2.blur(first, box), cv2.blur(second, box)
        key = tuple(sorted(keys))
        if self._choice is not None and self._choice[0] == key and self._choice[1].shape == a.shape:
            choice = self._choice[1].copy()
        else:
            choice = a >= b
        choice[a > CHOICE_MARGIN * b] = True
        choice[b > CHOICE_MARGIN * a] = False
        self._choice = (key, choice)
        return cv2.blur(choice.astype(np.float32), (SEAM_BLUR, SEAM_BLUR))


def guided(sides: list[Side], source: np.ndarray, keys: tuple[int, int], choice: RegionChoice, in_parallel
           ) -> dict[str, np.ndarray]:
    """Frame t from the sides' colour models applied to its own pixels plus one side's residual per region (`choice`,
    kept by the Propagator across frames); `in_parallel(first, second)` runs the second in the side thread."""
    size = source.shape[1::-1]
    weights = [side.small_weight for side in sides]
    if len(sides) == 1:
        share = None
        trust = sides[0].confidence
        reach = weights[0]
    else:
        # The choice is kept in terms of the earlier keyframe: which side is nearer flips mid-gap.
        # The choice leans on confidence more than on time: a side that sees a region clearly takes it
        # even late in the gap (its residual is right there; the nearer side's would be dragged).
        scores = [(side.confidence + 1e-3) * (CHOICE_TIME + side.closeness) for side in sides]
        if keys[0] < keys[1]:
            share = choice.choose(scores[0], scores[1], keys)  # 1 where the first side's residual is taken
        else:
            share = 1.0 - choice.choose(scores[1], scores[0], keys)
        trust = share * sides[0].confidence + (1.0 - share) * sides[1].confidence
        reach = share * weights[0] + (1.0 - share) * weights[1]
    # Where the flow is unsure (reach low), the keyframes' by-colour models of frame t's own colours take over
    # from the warped local models.
    by_colour, bins, bin_error = pooled_by_colour(sides, source, sides[0].coeffs.shape[1:])
    low, high = FALLBACK_WEIGHT
    spread = np.float32(FALLBACK_SPREAD ** 2)
    # per bin, then looked up (BINS^3 values, not a plane's worth of arithmetic)
    fallback_weight = np.take(low + (high - low) * spread / (bin_error + spread), bins).astype(np.float32)
    loose = loose_ink(sides, source, share)
    ink = redrawn_ink(sides, source, share, trust) if loose is None else (loose.amount, loose.colour)
    strong = np.minimum(trust * np.float32(1.0 / RESIDUAL_TRUST), 1.0)
    detail = sides[0].detail if share is None else \
        cv2.add(sides[1].detail, cv2.multiply(share, cv2.subtract(sides[0].detail, sides[1].detail)))
    trust = cv2.add(trust, cv2.multiply(detail, cv2.subtract(strong, trust)))

    def model_planes(planes: range) -> list[np.ndarray]:
        """Coefficient planes of the chosen side's model, mixed with the by-colour one where the flow is unsure,
        brought to full size (a list: not stacked, no copy)."""
        # (OpenCV's element-wise ops: numpy's float32 values, in about half the time)
        out = []
        for i in planes:
            chosen = sides[0].coeffs[i] if share is None else \
                cv2.add(sides[1].coeffs[i], cv2.multiply(share, cv2.subtract(sides[0].coeffs[i], sides[1].coeffs[i])))
            fallback = cv2.multiply(np.take(by_colour[i], bins), fallback_weight)
            mixed = cv2.divide(cv2.add(cv2.multiply(chosen, reach), fallback), reach_total)
            out.append(cv2.resize(mixed, size, interpolation=cv2.INTER_LINEAR))
        return out

    reach_total = cv2.add(reach, fallback_weight)

    # Everything smooth is brought to full size once, half of the model's planes in each thread; the per-pixel
    # arithmetic then runs in two bands of rows, one in each thread (OpenCV and numpy release the GIL).
    first, second = in_parallel(
        lambda: (model_planes(range(6)), cv2.split(unit(source))),
        lambda: (model_planes(range(6, 12)), resize(trust, size, cv2.INTER_LINEAR),
                 None if share is None else resize(share, size, cv2.INTER_LINEAR)))
    coeffs, channels = first[0] + second[0], first[1]
    trust, full_share = second[1], second[2]
    literal_carried = any(side.view.carries_literal for side in sides)
    assent = assent_weight(sides, full_share, loose) if literal_carried else None
    ghost = None if loose is None else loose.ghost
    colour = np.empty(source.shape, np.uint8)

    def chosen_layer(layer: str, rows: slice) -> np.ndarray:
        """The chosen side's residual ("color", cubic) or literal colour (nearest) warped to these rows: each
        side is sampled only in the tiles where it is chosen (flow.warp_chosen)."""
        images = [side.view.layers["color"] if layer == "color" else side.view.model.literal for side in sides]
        coords = [(side.coords[0][rows], side.coords[1][rows]) for side in sides]
        method = cv2.INTER_CUBIC if layer == "color" else cv2.INTER_NEAREST
        if full_share is None:
            return warp(images[0], coords[0], method)
        return warp_chosen(images[0], images[1], coords[0], coords[1], full_share[rows], method)

    def band(rows: slice) -> None:
        # Channel by channel, in OpenCV's vector ops: the same values as numpy's broadcasting over the
        # interleaved channels, in half the time.
        residual = cv2.split(chosen_layer("color", rows))
        # Where the model does not explain the keyframe (ink), its colour is carried as it is (see
        # colour_model): chosen from the same side as the residual, faded with it where the flow is unsure.
        here = trust[rows]
        # A carried-ink style's carried lines where they are ghosts (see `loose_ink`): its residual's dark part
        # left out there too, not only its stamped colour.
        kept = here if ghost is None else cv2.multiply(here, cv2.subtract(1.0, cv2.multiply(ghost[rows],
                                                                                           darkness(residual))))
        literal = cv2.split(chosen_layer("literal", rows)) if literal_carried else None
        if literal is not None:
            weight = np.clip(literal[3], 0.0, 1.0) * here
            if assent is not None:
                weight = cv2.multiply(weight, assent[rows])
        inked = None if ink is None else (ink[0][rows], cv2.split(ink[1][rows]))
        source = [channel[rows] for channel in channels]
        planes = []
        for c in range(3):
            k = [plane[rows] for plane in coeffs[4 * c:4 * c + 4]]
            model = cv2.add(cv2.add(cv2.add(cv2.multiply(k[0], source[0]), cv2.multiply(k[1], source[1])),
                                    cv2.multiply(k[2], source[2])), k[3])  # A source + b
            model = cv2.add(model, cv2.multiply(residual[c], kept))
            if literal is not None:
                model = cv2.add(model, cv2.multiply(cv2.subtract(literal[c], model), weight))
            if inked is not None:  # the ink redrawn on frame t's own edges, over everything else
                model = cv2.add(model, cv2.multiply(cv2.subtract(inked[1][c], model), inked[0]))
            planes.append(model)
        colour[rows] = finish({"color": cv2.merge(planes) * np.float32(255.0)})["color"]  # rounded here

    half = source.shape[0] // 2
    in_parallel(lambda: band(slice(0, half)), lambda: band(slice(half, source.shape[0])))
    out = {}
    others = [name for name in sides[0].layers if name != "color"]
    if others:
        full = [resize(w, size, cv2.INTER_LINEAR) for w in weights]
        for name in others:
            if len(sides) == 1:
                out[name] = sides[0].layers[name]
            else:
                out[name] = cv2.blendLinear(sides[0].layers[name], sides[1].layers[name], full[0], full[1])
    return {"color": colour, **finish(out)}

def pooled_by_colour(sides: list[Side], source: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """The sides' by-colour model (colour_model.fit_by_colour) for frame t's colours at `shape` (the analysis
    size): (12 x BINS^3 table, each pixel's bin, each bin's error on the keyframes: colour_model.by_colour_error);
    plane i is np.take(table[i], bins), as colour_model.coefficients_by_colour gives them all. Two keyframes' pixels are fitted together, each weighted
    by its closeness, rather than their two fits averaged: a colour one keyframe never showed takes the other's
    fit, not half of it and half the global fit (propagate_real, pixel-wise and toon: +0.00 to +0.02 dB)."""
    small = cv2.resize(source, shape[::-1], interpolation=cv2.INTER_AREA)
    total = sum(side.closeness for side in sides)
    shares = [side.closeness / total for side in sides]
    sums = sum(side.view.model.by_colour_sums * share for side, share in zip(sides, shares))
    if len(sides) == 1:
        table = sides[0].by_colour
    else:  # the two keyframes' pixels counted together (their sums, closeness-weighted), then fitted
        table = solve_by_colour(sums, sum(side.view.model.glob * np.float32(share) for side, share in zip(sides, shares)))
    return np.ascontiguousarray(table.T), colour_bins(small), by_colour_error(sums, table, FALLBACK_PRIOR_ERROR)

def redrawn_ink(sides: list[Side], source: np.ndarray, share: np.ndarray | None, confidence: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray] | None:
    """How much ink each pixel of frame t takes (H x W) and its colour (H x W x 3 unit RGB), or None for a
    style without ink. Ink is drawn where frame t's own edges look like those the keyframe inked (ink_model):
    near the ink carried from the side chosen for the region, where that side's flow is trusted; anywhere
    the keyframe would ink such an edge, where no flow is (occluded in both keyframes)."""
    inked = [side for side in sides if side.ink is not None]
    if not inked:
        return None
    size = source.shape[1::-1]
    total = sum(side.closeness for side in inked)
    near = sum(side.ink.near * side.closeness for side in inked) / total
    anywhere = sum(side.ink.anywhere * side.closeness for side in inked) / total
    feats = ink_model.edge_maps(source)
    gates = [side.ink_gate if side.ink is not None else np.zeros(size[::-1], np.float32) for side in sides]
    colours = [side.ink_colour if side.ink is not None else inked[0].ink_colour for side in sides]
    if share is None:
        gate, colour = gates[0], colours[0]
    else:
        full_share = resize(share, size, cv2.INTER_LINEAR)
        gate = cv2.add(gates[1], cv2.multiply(full_share, cv2.subtract(gates[0], gates[1])))
        colour = colours[1] + share * (colours[0] - colours[1])
    amount = cv2.multiply(gate, ink_model.predict(near, feats))
    small_trust = np.minimum(confidence * np.float32(1.0 / INK_TRUST), 1.0)
    if small_trust.min() < 1.0:  # somewhere no flow vouches for the carried ink: the keyframe's model alone
        trust = resize(small_trust, size, cv2.INTER_LINEAR)
        anywhere = ink_model.predict(anywhere, feats)
        amount = cv2.add(anywhere, cv2.multiply(trust, cv2.subtract(amount, anywhere)))
    colour = cv2.merge([cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR) for plane in colour])
    return ink_model.hard(amount), colour

def assent_weight(sides: list[Side], share: np.ndarray | None, loose: LooseInk | None) -> np.ndarray | None:
    """For a style whose ink is carried (colour_model.KeyModel.loose_ink), how much of the chosen side's literal
    colour is stamped at each pixel (H x W float32, 0..1), or None: all of it. Where the flow is off or tears (a
    fast figure, the parallax at a pillar's edge), one side's line lands where the other's does not, and a stamped
    line there costs more fidelity than a blended one, so it is stamped (nearest, replacing the colour) only
      - where the other side, carried to t, has it too within ASSENT_REACH, or vouches for nothing there
        (confidence under RESIDUAL_TRUST); elsewhere only the side's residual is added to frame t's own model
        colour (cubic) (Blender clip: 22.51 dB all stamped, 22.75 so);
      - where the ink is redrawn by colour pair, where frame t's colours within a pixel are a pair the keyframes
        ink (`loose_ink`, LOOSE_VETO): a line carried onto two colours the style never separates (the wall where
        the figure was) is a ghost."""
    if loose is None or any(side.carried_ink is None for side in sides):
        return None
    if loose.keep is None:  # redrawn by the edge model: stamped wherever the other side assents
        return None if share is None else assent_marks(sides, share)
    return loose.keep if share is None else cv2.multiply(assent_marks(sides, share), loose.keep)

def assent_marks(sides: list[Side], share: np.ndarray) -> np.ndarray:
    """1 where the other side, carried to t, has the chosen side's line within ASSENT_REACH or vouches for nothing
    (see `assent_weight`)."""
    marks = []
    reach = np.ones((2 * ASSENT_REACH + 1,) * 2, np.uint8)
    for side in sides:
        vouches = resize(np.minimum(side.confidence * np.float32(1.0 / RESIDUAL_TRUST), 1.0),
                          share.shape[::-1], cv2.INTER_LINEAR)
        drawn = cv2.dilate((side.carried_ink > 0.5).astype(np.float32), reach)
        marks.append(cv2.subtract(1.0, cv2.multiply(vouches, cv2.subtract(1.0, drawn))))  # 1: drawn or no say
    return cv2.add(marks[0], cv2.multiply(share, cv2.subtract(marks[1], marks[0])))  # the *other* side's mark

def loose_ink(sides: list[Side], source: np.ndarray, share: np.ndarray | None) -> LooseInk | None:
    """For a style whose ink is carried (KeyModel.loose_ink; None for any other), its lines redrawn on frame t's own
    pixels where no side's flow vouches for the carried ones: there a figure outruns the flow, or the flow tears
    at an occluding edge, and the carried outline lands torn, or twice.
      - By colour pair (ink_pairs), where the keyframes' lines are a pair's: where frame t's colours meet as the
        keyframes' inked colours do, in the regions where no side's confidence reaches LOOSE_TRUST (a hard
        switch); there carried lines (stamped, and their residual's dark part) are kept only where frame t's
        colours bear them out (LOOSE_VETO, `keep`; see `assent_weight`). Blender clip, toon: 22.75 -> 23.48 dB
        (sharpness 0.94 -> 0.92), the walking figure's outline drawn where the flow lost it, and not left behind
        where it was.
      - Else by the whole-frame edge model (ink_model `anywhere`), fading in as the confidence drops below
        LOOSE_EDGE_TRUST (alone, without `assent_weight`: 22.51 -> 22.62 dB, sharpness 0.90 -> 0.97); None where every
        pixel is vouched for."""
    if any(side.view.model is None or side.view.model.loose_ink is None for side in sides):
        return None
    best = sides[0].confidence if len(sides) == 1 else np.maximum(sides[0].confidence, sides[1].confidence)
    size = source.shape[1::-1]
    total = sum(side.closeness for side in sides)
    by_pairs = all(side.view.ink_pairs is not None for side in sides)
    if by_pairs:
        redraw = cv2.blur((best < LOOSE_TRUST).astype(np.float32), (SEAM_BLUR, SEAM_BLUR))
    else:
        redraw = cv2.subtract(1.0, np.minimum(best * np.float32(1.0 / LOOSE_EDGE_TRUST), 1.0))
        if redraw.max() <= 0.0:
            return None
    redraw = resize(redraw, size, cv2.INTER_LINEAR)
    colours = [side.ink_colour for side in sides]
    colour = colours[0] if share is None else colours[1] + share * (colours[0] - colours[1])
    colour = cv2.merge([cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR) for plane in colour])
    if by_pairs:
        tables = ink_pairs.pooled([side.view.ink_pairs for side in sides], [side.closeness / total for side in sides])
        chance = ink_pairs.predict(tables, source)
        nearby = cv2.dilate(chance, np.ones((3, 3), np.uint8))  # a carried line may be a pixel off
        low, high = LOOSE_VETO
        keep = np.clip((nearby - low) * np.float32(1.0 / (high - low)), 0.0, 1.0)
        return LooseInk(cv2.multiply(ink_model.hard(chance, ink_pairs.HARD), redraw), colour, keep,
                         cv2.multiply(redraw, cv2.subtract(1.0, keep)))
    anywhere = sum(side.view.model.loose_ink.anywhere * side.closeness for side in sides) / total
    drawn = ink_model.hard(ink_model.predict(anywhere, ink_model.edge_maps(source)), LOOSE_EDGE_HARD)
    return LooseInk(cv2.multiply(drawn, redraw), colour)


def darkness(residual: list[np.ndarray]) -> np.ndarray:
    """How much each pixel of a residual's (R, G, B) planes is dark ink: 0 to 1 as its luma goes below -INK_LOW to
    -INK_HIGH (ink_model.ink_amount's measure, without the smoothstep)."""
    luma = cv2.add(cv2.add(cv2.multiply(residual[0], 0.299), cv2.multiply(residual[1], 0.587)),
                   cv2.multiply(residual[2], 0.114))
    low, high = ink_model.INK_LOW, ink_model.INK_HIGH
    return np.clip(cv2.multiply(cv2.add(luma, low), -1.0 / (high - low)), 0.0, 1.0)


def residual_detail(model: KeyModel, size) -> np.ndarray:
    """How much of a keyframe's residual is detail around each pixel, 0..1 at `size` (w, h): its largest channel's
    magnitude over DETAIL_LEVEL, and 1 wherever the keyframe's colour is carried as it is (model.literal: ink the
    fit partly explains, so its residual there can be small); the local maximum is kept through the shrink (a thin
    line counts where it is)."""
    # (OpenCV's element-wise ops: numpy's values in a fraction of the time on a whole frame)
    magnitude = functools.reduce(cv2.max, [cv2.absdiff(plane, 0.0) for plane in cv2.split(model.residual)])
    detail = cv2.min(cv2.multiply(magnitude, 1.0 / DETAIL_LEVEL), 1.0)
    detail = cv2.max(detail, cv2.min(cv2.max(np.ascontiguousarray(model.literal[..., 3]), 0.0), 1.0))
    factor = max(1, round(detail.shape[1] / size[0]))
    if factor > 1:
        detail = cv2.dilate(detail, np.ones((factor, factor), np.uint8))
    return cv2.resize(detail, size, interpolation=cv2.INTER_AREA)
