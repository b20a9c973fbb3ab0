"""The colour-difference keyer: how much a pixel still looks like the screen at its place, whatever its brightness.

Screen in shadow has the same hue as lit screen (all channels scale together), so the screen channel's
lead over the others, as a share of the screen channel, stays the screen's own, and so does the ratio of the
other two (the screen's tint): it keys as screen. The raw key is the larger of the lead lost
(`1 - lead / screen_lead`) and the tint turned: 0 on screen, 1 on anything not screen-coloured.

At the fringe, the raw key is only a guess; alpha is solved from the mix p = u * subject + (1 - a) * screen
in linear RGB (u free: the subject's own shading), with the subject colour from the solid subject right next
to it and the screen colour from the actual screen next to it (shadowed or not; the screen model's lit colour
inside dense strands, where none shows). Channels clipped at white carry no mix and are left out of the solve
(where one channel is left, a is solved on it), so an edge next to a blown highlight does not come out opaque.
The fringe includes the outline's pixels next to solid subject even when their hue is the screen's (a dark
subject covering part of a pixel only darkens it), and next to a subject with no lead of its own alpha is at
most the screen's lead lost (dense strands keyed solid are a mix, not a subject colour to solve against).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from backend.pipelines.screen_model import EPS, MIN_LEAD, ScreenModel, estimate_screen

if TYPE_CHECKING:
    from backend.pipelines.chroma_key import ChromaKeyParams

CLIPPED = 0.985          # a channel at or above this is clipped and says nothing about the mix
BALANCE = 0.35           # how far (log ratio) the other two channels may stray from the screen's balance
HOT, HOT_SIGMA = 0.9, 3.0  # a screen channel this bright (linear) is near clipping; how far its local lead is taken
SIGMA_PER_RADIUS = 2.0     # how far around a fringe pixel the screen's colour is looked for
SUBJECT_SIGMA_PER_RADIUS = 1.0   # ... and the subject's: close by, where light bouncing off the screen tints it alike
SOLID = 0.8              # raw key from which a pixel is clearly subject (no screen in it), for the bound on strands
MIN_ANGLE = 0.02         # sin² of the angle between subject and screen colours below which they cannot be unmixed
MIN_CONTRAST = 0.01      # squared difference of subject and screen (linear) below which one channel cannot unmix
TINT_GAIN = 2.0          # weight of the tint side of hue against the lead side (tuned on bench/matte.py's shots)
MAX_HIDDEN = 0.75        # most alpha a fringe pixel of the screen's hue may get (more: a shadow, not subject)
_NEIGHBOURS = np.ones((3, 3), np.uint8)   # the outline's antialiased pixels: one pixel around the keyed subject


def raw_key(rgb: np.ndarray, screen: ScreenModel) -> np.ndarray:
    """0 where the pixel has the screen's hue at its place, rising to 1 where it has none of it.

    Both sides of hue count: the screen channel's lead lost (`1 - lead / screen lead`), and the other two
    channels turned away from the screen's tint (`|second - tint * first|`, as a share of the screen channel,
    relative to the screen's lead, times TINT_GAIN): a pale yellow-green shirt in green bounce light keeps
    the screen's lead but not its tint. Shadow and falloff scale all three channels: neither side moves.
    """
    planes = cv2.split(np.ascontiguousarray(rgb, np.float32))   # contiguous planes for OpenCV's vector ops
    first, second = (planes[c] for c in range(3) if c != screen.channel)
    value = cv2.max(planes[screen.channel], EPS)
    lead = cv2.divide(cv2.subtract(planes[screen.channel], cv2.max(first, second)), value)
    hot = _keeps_balance((value >= HOT) & (lead > MIN_LEAD / 2), first, second, screen.balance)
    screen_lead = cv2.max(_clipped_screen_lead(lead, hot, screen), MIN_LEAD / 2)
    lost = cv2.subtract(1.0, cv2.divide(lead, screen_lead))
    off_tint = cv2.multiply(cv2.absdiff(second, cv2.multiply(first, screen.tint)), screen.tint_share)
    turned = cv2.divide(off_tint, cv2.multiply(value, screen_lead), scale=TINT_GAIN)
    return np.clip(cv2.max(lost, turned), 0.0, 1.0, out=lost)


def _keeps_balance(near_clipping: np.ndarray, first: np.ndarray, second: np.ndarray, balance: float) -> np.ndarray:
    """Of the pixels near clipping, those whose other two channels keep the screen's balance (balance_of's log).

    The log only where it matters: on the few such pixels gathered, or, where they are many (an overexposed
    screen), over their rows' band of the planes, which costs less than gathering them (the same values)."""
    rows = np.nonzero(near_clipping.any(1))[0]
    if not len(rows):
        return near_clipping
    band = slice(rows[0], rows[-1] + 1)
    count = int(np.count_nonzero(near_clipping[band]))
    if count * 8 < near_clipping[band].size:
        near_clipping[near_clipping] = np.abs(np.log((second[near_clipping] + 0.01) / (first[near_clipping] + 0.01))
                                              - balance) < BALANCE
        return near_clipping
    near_clipping[band] &= np.abs(np.log((second[band] + 0.01) / (first[band] + 0.01)) - balance) < BALANCE
    return near_clipping


def _clipped_screen_lead(lead: np.ndarray, hot: np.ndarray, screen: ScreenModel) -> np.ndarray:
    """The screen's lead, taken locally where the screen channel clips: there the lead falls steeply (the other
    channels keep rising while the screen's cannot), faster than the smooth screen model can follow. `hot`:
    pixels near clipping whose other two channels keep the screen's balance (a pale subject does not).

    The blurs run on the hot pixels' bounding box plus the blur's reach: outside it their weight is exactly 0.
    """
    ys, xs = np.nonzero(hot.any(1))[0], np.nonzero(hot.any(0))[0]
    if not len(ys):
        return screen.lead
    reach = raw_reach()
    box = (slice(max(ys[0] - reach, 0), ys[-1] + reach + 1), slice(max(xs[0] - reach, 0), xs[-1] + reach + 1))
    part = hot[box].astype(np.float32)
    weight = cv2.GaussianBlur(part, (0, 0), HOT_SIGMA, borderType=cv2.BORDER_REPLICATE)
    local = cv2.GaussianBlur(lead[box] * part, (0, 0), HOT_SIGMA, borderType=cv2.BORDER_REPLICATE) / np.maximum(weight, 1e-6)
    out = screen.lead.copy()
    out[box] = np.where(weight > 0.2, np.minimum(screen.lead[box], local), screen.lead[box])
    return out


def _blur_reach(sigma: float) -> int:
    """How far (pixels) OpenCV's float Gaussian kernel for `sigma` reaches: its size is 2 * round(4 sigma) + 1."""
    return int(round(4 * sigma))


def _local_mean(rgb: np.ndarray, mask: np.ndarray, sigma: float,
                at: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean colour of the masked pixels near each pixel of `at`, their weight there).

    The means are smooth, so they are made at half the frame's size (a quarter of the work) and read at `at`.
    """
    step = 2 if sigma >= 2.0 else 1     # solve_reach follows this choice
    m8 = mask.astype(np.uint8)
    m = m8.astype(np.float32)
    total = cv2.copyTo(rgb, m8)    # the masked pixels, zero elsewhere (a masked copy, not a multiply)
    if step > 1:
        size = (max(1, rgb.shape[1] // step), max(1, rgb.shape[0] // step))
        m, total = cv2.resize(m, size, interpolation=cv2.INTER_AREA), cv2.resize(total, size, interpolation=cv2.INTER_AREA)
    weight = cv2.GaussianBlur(m, (0, 0), sigma / step, borderType=cv2.BORDER_REPLICATE)
    total = cv2.GaussianBlur(total, (0, 0), sigma / step, borderType=cv2.BORDER_REPLICATE)
    ys = np.minimum(at[0] // step, weight.shape[0] - 1)
    xs = np.minimum(at[1] // step, weight.shape[1] - 1)
    w = weight[ys, xs]
    return total[ys, xs] / np.maximum(w, 1e-6)[:, None], w


def difference_key(rgb: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel | None,
                   raw: np.ndarray | None = None
                   ) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None, np.ndarray]:
    """(fringe pixel indices, their straight colour in linear light, alpha float32) of one frame (linear RGB).

    Only the fringe's colour changes (the screen's share taken out); despill is left to the caller. `raw`: the
    frame's raw_key against `screen` when the caller made it already.
    """
    channel = int(np.argmax(params.key))
    if screen is None:
        screen = estimate_screen([rgb], channel)
    if screen is None:       # no screen in the frame: everything is subject
        return None, None, np.ones(rgb.shape[:2], np.float32)
    if screen.lead.shape != rgb.shape[:2]:
        raise ValueError(f"the screen model is {screen.lead.shape[1]}x{screen.lead.shape[0]} but the frame is "
                         f"{rgb.shape[1]}x{rgb.shape[0]}: key frames of one size per shot")
    raw = raw_key(rgb, screen) if raw is None else raw
    lo, hi = key_limits(params)
    if params.edges == "ramp":
        return None, None, np.clip((raw - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    # the solve runs on the part of the frame that is not plain screen (plus the reach of its blurs)
    ys, xs = np.nonzero((raw > lo).any(1))[0], np.nonzero((raw > lo).any(0))[0]
    alpha = np.zeros(raw.shape, np.float32)
    if not len(ys):
        return None, None, alpha
    margin = solve_reach(params.edge_radius)
    box = (_even_span(ys[0] - margin, ys[-1] + margin + 1, raw.shape[0]),
           _even_span(xs[0] - margin, xs[-1] + margin + 1, raw.shape[1]))
    # a part ending at an odd frame edge gets one more row/column repeating it, so that the local means pair
    # pixels 2 by 2 there as the banded solve's crops (repeated past the edge) do
    h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
    part_screen = screen.crop(box)
    part_screen = ScreenModel(part_screen.channel, _to_even(part_screen.lead), _to_even(part_screen.level),
                              part_screen.balance, _to_even(part_screen.tint))
    part, fringe, straight = solve_part(_to_even(rgb[box]), _to_even(raw[box]), params, part_screen)
    inside = (fringe[0] < h) & (fringe[1] < w)
    alpha[box] = part[:h, :w]
    return (fringe[0][inside] + box[0].start, fringe[1][inside] + box[1].start), straight[inside], alpha


def _to_even(image: np.ndarray) -> np.ndarray:
    """The image with its last row and/or column repeated once where its height and/or width is odd."""
    h, w = image.shape[:2]
    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE) if (h | w) % 2 else image


def key_limits(params: "ChromaKeyParams") -> tuple[float, float]:
    """(raw key at or below which a pixel is screen, raw key at or above which it is solid subject)."""
    return params.tolerance, params.tolerance + max(params.softness, 1e-6)


def solve_reach(radius: int) -> int:
    """How far (pixels) the fringe solve looks around a pixel: the local means' blur (at half size when `_local_mean`
    halves, each half pixel pairing two) plus the erosion of the core and clear masks."""
    sigma = SIGMA_PER_RADIUS * radius + 1.0
    step = 2 if sigma >= 2.0 else 1
    return step * _blur_reach(sigma / step) + step - 1 + radius


def raw_reach() -> int:
    """How far (pixels) the raw key looks around a pixel: the clipped screen's local lead (where any pixel is hot)."""
    return _blur_reach(HOT_SIGMA) + 1


def _even_span(start: int, stop: int, size: int) -> slice:
    """[start, stop) within [0, size), widened to even ends: the local means pair pixels 2 by 2 from the part's
    corner, so parts cut at even places pair them as the whole frame does (a banded solve equals the full one)."""
    start, stop = max(start, 0) // 2 * 2, min(stop + stop % 2, size)
    return slice(int(start), int(stop))


def solve_part(rgb: np.ndarray, raw: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel
               ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """(alpha, fringe pixel indices, their straight colour) of a part of a frame (linear RGB) and its raw key.

    A pixel's result depends on the part's pixels within solve_reach(edge_radius) of it only."""
    lo, hi = key_limits(params)
    ramp = np.clip((raw - lo) / (hi - lo), 0.0, 1.0)
    alpha, fringe, background = _unmix(rgb, raw, ramp, lo, hi, params.edge_radius, screen)
    return alpha, fringe, _straight(rgb[fringe], alpha[fringe], background)


def _sum3(rgb: np.ndarray) -> np.ndarray:
    """rgb.sum(-1) of an (N, 3) array, added column by column: the same float32 sums (numpy adds three values in
    order too), without numpy's reduction machinery, which costs ~20x more on (N, 3)."""
    return rgb[:, 0] + rgb[:, 1] + rgb[:, 2]


def _lead(rgb: np.ndarray, channel: int) -> np.ndarray:
    """How far the screen channel exceeds the larger of the others (linear light, not divided by anything)."""
    others = [c for c in range(3) if c != channel]
    return rgb[..., channel] - np.maximum(rgb[..., others[0]], rgb[..., others[1]])


def _unmix(rgb: np.ndarray, raw: np.ndarray, ramp: np.ndarray, lo: float, hi: float,
           radius: int, screen: ScreenModel) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Alpha solved in RGB at the fringe against the nearby subject and screen colours.

    Returns (alpha, the fringe's pixel indices, the screen colour next to each of them): the solve runs on
    the fringe's pixels only (a few percent of a frame), the blurs on the whole part.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.erode((raw >= hi).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    clear = cv2.erode((raw <= lo).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    sigma = SIGMA_PER_RADIUS * radius + 1.0
    # the outline's antialiased pixels next to solid subject are solved too, even with the screen's hue: a dark
    # subject covering part of a pixel only darkens the screen there, so the hue alone keys it as screen. Grown
    # from solid pixels only (raw >= hi): specks of noise on a weak screen stay specks
    keyed = raw > lo
    outline = cv2.dilate((raw >= hi).astype(np.uint8), _NEIGHBOURS).astype(bool)
    fringe_mask = (keyed | outline) & ~core
    fringe = np.nonzero(fringe_mask)
    hidden = ~keyed[fringe]          # of those, the ones whose hue is the screen's
    f, w_subject = _local_mean(rgb, core, SUBJECT_SIGMA_PER_RADIUS * radius, fringe)
    b, w_screen = _local_mean(rgb, clear, sigma, fringe)
    walled = w_screen <= 1e-3
    if walled.any():   # inside dense strands no screen shows within reach: the screen model's lit colour there
        b[walled], w_screen[walled] = screen.lit_colour((fringe[0][walled], fringe[1][walled])), 1.0
    p = rgb[fringe]
    has_subject, has_screen = w_subject > 1e-3, w_screen > 1e-3
    # p = u * subject + v * screen: u free, so a subject pixel in its own shade (darker than the lit subject
    # next to it) is not mistaken for a mix with the screen; alpha = 1 - v
    w = ((p < CLIPPED) & (f < CLIPPED)).astype(np.float32)
    ff, ss, fs = _sum3(w * f * f), _sum3(w * b * b), _sum3(w * f * b)
    fp, sp = _sum3(w * f * p), _sum3(w * b * p)
    det = ff * ss - fs * fs
    solved = np.clip(1.0 - (ff * sp - fs * fp) / np.maximum(det, 1e-12), 0.0, 1.0)
    distinct = det > MIN_ANGLE * ff * ss          # subject and screen colours far enough apart in hue
    usable = has_subject & has_screen & distinct & (ss > 1e-6)
    # no solid subject near (hair, thin strands): the screen's lead lost against the actual screen next to it,
    # exact for a subject with no lead of its own (dark or grey), which strands of hair mostly are
    lost = np.clip(1.0 - _lead(p, screen.channel) / np.maximum(_lead(b, screen.channel), 1e-4), 0.0, 1.0)
    # clipping leaves one channel (a blown subject on a blown screen): u cannot be free, the subject is taken at
    # the colour next to it, p = a * subject + (1 - a) * screen, solved on what is left
    d = f - b
    dd = _sum3(w * d * d)
    one_left = (_sum3(w) <= 1.0) & (dd > MIN_CONTRAST) & has_subject & has_screen & ~usable
    lost[one_left] = np.clip(_sum3(w * (p - b) * d)[one_left] / dd[one_left], 0.0, 1.0)
    # lost is exact for a subject with no lead of its own and too high for one whose other channels pass the
    # screen channel (skin, red, brown hair): next to such a subject (its solid part), alpha is at most lost, even
    # where the subject colour solved against is itself a mix (dense strands crowding into a blob keyed solid)
    solid, w_solid = _local_mean(rgb, core & (raw >= SOLID), sigma, fringe)
    bounded = (w_solid > 1e-3) & (_lead(solid, screen.channel) <= 0) & has_screen & (_sum3(w) == 3)
    solved = np.where(bounded, np.minimum(solved, lost), solved)
    alpha = core.astype(np.float32)
    found = np.where(usable, solved, np.where(has_screen, lost, ramp[fringe]))
    # a pixel of the screen's hue that came out mostly subject is a deep shadow on the screen next to the
    # subject (between the feet), not a nearly black subject: the two look alike pixel by pixel, the shadow is common
    alpha[fringe] = np.where(hidden & (found >= MAX_HIDDEN), 0.0, found)
    return alpha, fringe, np.where(has_screen[:, None], b, p)


def _straight(p: np.ndarray, alpha: np.ndarray, background: np.ndarray, min_alpha: float = 0.05) -> np.ndarray:
    """The subject's own colour at fringe pixels: the screen's share removed, (p - (1 - a) * screen) / a."""
    a = alpha[:, None]
    subject = (p - (1.0 - a) * background) / np.maximum(a, min_alpha)
    return np.where((a >= min_alpha) & (a < 1.0), np.clip(subject, 0.0, 1.0), p).astype(np.float32)
