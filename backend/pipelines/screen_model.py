"""The screen as it was lit: its hue and its brightness at every pixel, smooth over the frame.

A real screen is never one colour: it falls off away from the lights, the floor differs from the
wall, and the figure casts a shadow on it. The keyer judges a pixel by its hue relative to the screen's
hue *at that place* (so shadows and falloff, which change brightness only, still key as screen); the
shadow layer compares a pixel's brightness with the screen's unshadowed level there.

Hue has two sides: how far the screen channel leads the other two (`lead`), and how those two stand to
each other (`tint`: for green, blue over red). Both fields and the level come from a coarse grid of cells:
in each, the median lead (green's lead over the other channels, as a share of green), the median tint and
a high percentile of the level (shadows are darker than the lit screen, so a high percentile ignores them)
over the pixels that are clearly screen; a cell whose tint strays from its neighbours' is a subject near the
screen's colour filling it, not screen. Cells without
screen (under the figure) are filled from their neighbours. Over a shot, the cell values of a few
frames are combined, so that a place hidden or shadowed in one frame is seen lit in another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from backend.pipelines.srgb import LINEAR_OF_U8, srgb_to_linear

CELLS_ACROSS = 8          # grid cells along the frame's shorter side: coarse enough that a cell is rarely all shadow
MIN_LEAD = 0.10           # the screen channel must lead the others by this share of itself to count as screen
MIN_CELL_SHARE = 0.15     # a cell needs this share of screen pixels to have its own estimate
LEVEL_PERCENTILE = 90     # shadows only darken: the lit screen is near the top of a cell's levels
EPS = 1e-4
BALANCE_CELL = 0.35       # how far (log ratio) a cell's tint may stray from its neighbours' and still be screen


def linear_light(color: np.ndarray) -> np.ndarray:
    """8-bit sRGB-encoded colour -> float32 linear light: the camera mixes subject and screen in linear light.

    OpenCV's table lookup (threaded, no index arrays): a fifth of numpy's fancy indexing at 1920x1080."""
    return cv2.LUT(np.ascontiguousarray(color[..., :3]), LINEAR_OF_U8)


@dataclass
class ScreenModel:
    """Per-pixel screen hue (`lead`, 0..1) and level (screen channel value, 0..1), plus the channel keyed."""

    channel: int
    lead: np.ndarray      # HxW float32: (screen channel - max(others)) / screen channel, of the screen itself
    level: np.ndarray     # HxW float32: the screen channel's value where the screen is lit and unshadowed
    balance: float = 0.0  # log ratio of the other two channels (for green: blue over red), kept when it clips
    tint: np.ndarray | None = None   # HxW float32: second other channel / first other channel (None: exp(balance))
    tint_share: np.ndarray = field(init=False, repr=False)   # 1 / (1 + tint): normalises a departure from the tint
    derived: dict = field(default_factory=dict, repr=False, compare=False)   # key_band's per-shot maps, made once

    def __post_init__(self) -> None:
        if self.tint is None:
            self.tint = np.full(self.lead.shape, np.exp(self.balance), np.float32)
        self.tint_share = (1.0 / (1.0 + self.tint)).astype(np.float32)

    def crop(self, box: tuple[slice, slice]) -> "ScreenModel":
        """The model over a part of the frame."""
        return ScreenModel(self.channel, self.lead[box], self.level[box], self.balance, self.tint[box])

    def lit_colour(self, at: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """(N, 3) float32: the lit screen's colour (linear) at the pixels `at`, from its level, lead and tint."""
        level, lead, tint = self.level[at], self.lead[at], self.tint[at]
        larger = level * (1.0 - lead)                    # the larger of the other two channels
        first, second = np.where(tint >= 1.0, larger / np.maximum(tint, EPS), larger), np.where(tint >= 1.0, larger, larger * tint)
        out = np.empty((len(level), 3), np.float32)
        others = [c for c in range(3) if c != self.channel]
        out[:, self.channel], out[:, others[0]], out[:, others[1]] = level, first, second
        return out


def balance_of(rgb: np.ndarray, channel: int) -> np.ndarray:
    """log(second other channel / first other channel): over- or underexposure does not change it."""
    others = [c for c in range(3) if c != channel]
    return np.log((rgb[..., others[1]] + 0.01) / (rgb[..., others[0]] + 0.01))


def channel_lead(rgb: np.ndarray, channel: int) -> tuple[np.ndarray, np.ndarray]:
    """(lead, value): how far the screen channel exceeds the others, as a share of itself; and its value."""
    planes = cv2.split(np.ascontiguousarray(rgb, np.float32))   # contiguous planes for OpenCV's vector ops
    others = [c for c in range(3) if c != channel]
    value = planes[channel]
    lead = cv2.divide(cv2.subtract(value, cv2.max(planes[others[0]], planes[others[1]])), cv2.max(value, EPS))
    return lead, value


def cell_stats(rgb: np.ndarray, channel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lead, level, tint, valid) per grid cell of one frame, from the pixels that are clearly screen."""
    h, w = rgb.shape[:2]
    lead, value = channel_lead(rgb, channel)
    others = [c for c in range(3) if c != channel]
    screen = lead > MIN_LEAD
    cell = max(4, round(min(h, w) / CELLS_ACROSS))
    gh, gw = max(1, round(h / cell)), max(1, round(w / cell))
    ys = np.linspace(0, h, gh + 1).astype(int)
    xs = np.linspace(0, w, gw + 1).astype(int)
    cell_lead = np.zeros((gh, gw), np.float32)
    cell_level = np.zeros((gh, gw), np.float32)
    cell_tint = np.ones((gh, gw), np.float32)
    valid = np.zeros((gh, gw), bool)
    for i in range(gh):
        for j in range(gw):
            block = screen[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
            if block.mean() < MIN_CELL_SHARE:
                continue
            cell_lead[i, j] = np.median(lead[ys[i]:ys[i + 1], xs[j]:xs[j + 1]][block])
            cell_level[i, j] = np.percentile(value[ys[i]:ys[i + 1], xs[j]:xs[j + 1]][block], LEVEL_PERCENTILE)
            pixels = rgb[ys[i]:ys[i + 1], xs[j]:xs[j + 1]][block]
            cell_tint[i, j] = np.median((pixels[:, others[1]] + EPS) / (pixels[:, others[0]] + EPS))
            valid[i, j] = True
    return cell_lead, cell_level, cell_tint, valid & ~_odd_cells(cell_tint, valid)


def _odd_cells(tint: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Cells whose tint strays from their neighbours' median by more than BALANCE (log ratio): a subject near the
    screen's colour (its lead passes for screen) filling the cell, not the screen. A coloured lamp changes the
    tint across the frame gradually, cell by cell: its cells agree with their neighbours."""
    log = np.log(tint)
    odd = np.zeros_like(valid)
    for i, j in zip(*np.nonzero(valid)):
        near = (slice(max(i - 1, 0), i + 2), slice(max(j - 1, 0), j + 2))
        others = log[near][valid[near]]
        if len(others) >= 4:   # itself and three neighbours at least
            odd[i, j] = abs(log[i, j] - np.median(others)) > BALANCE_CELL
    return odd


def _fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid cells from valid ones nearby (blur weighted by validity, wider until all are covered)."""
    out = values.astype(np.float32).copy()
    weight = valid.astype(np.float32)
    if not valid.any():
        raise ValueError("no screen found")
    sigma = 1.0
    filled = valid.copy()
    while not filled.all():
        num = cv2.GaussianBlur(values * weight, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        den = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        reach = den > 1e-3
        out = np.where(filled, out, np.where(reach, num / np.maximum(den, 1e-6), out))
        filled |= reach
        sigma *= 2.0
    return out


def _to_pixels(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    smooth = cv2.GaussianBlur(cells, (0, 0), 0.7, borderType=cv2.BORDER_REPLICATE) if min(cells.shape) > 2 else cells
    return cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def estimate_screen(frames: list[np.ndarray], channel: int) -> ScreenModel | None:
    """The shot's screen from a few of its frames, in linear light (None when no screen is found in any)."""
    stats = [cell_stats(rgb, channel) for rgb in frames]
    shapes = {s[0].shape for s in stats}
    if len(shapes) != 1:
        raise ValueError("the screen is estimated from frames of one size")
    leads = np.stack([s[0] for s in stats])
    levels = np.stack([s[1] for s in stats])
    tints = np.stack([s[2] for s in stats])
    valid = np.stack([s[3] for s in stats])
    seen = valid.any(0)
    if not seen.any():
        return None
    # hue: the median over frames where the cell showed screen; level: the brightest of them (unshadowed)
    lead = np.where(valid, leads, np.nan)
    cell_lead = np.where(seen, np.nanmedian(np.where(seen[None], lead, 0.0), axis=0), 0.0).astype(np.float32)
    tint = np.where(valid, tints, np.nan)
    cell_tint = np.where(seen, np.nanmedian(np.where(seen[None], tint, 1.0), axis=0), 1.0).astype(np.float32)
    cell_level = np.where(valid, levels, 0.0).max(0).astype(np.float32)
    size = frames[0].shape[:2]
    balance = float(np.median(np.concatenate([balance_of(f[::4, ::4], channel)[channel_lead(f[::4, ::4], channel)[0] > MIN_LEAD]
                                              for f in frames])))
    return ScreenModel(channel, _to_pixels(_fill(cell_lead, seen), size), _to_pixels(_fill(cell_level, seen), size),
                       balance, _to_pixels(_fill(cell_tint, seen), size))


def screen_from_plate(plate: np.ndarray, channel: int, size: tuple[int, int]) -> ScreenModel:
    """The screen from a clean plate (the empty set, same camera): its hue and level at every pixel."""
    rgb = (linear_light(plate) if plate.dtype == np.uint8 else
           srgb_to_linear(plate[..., :3].astype(np.float32) / (65535.0 if plate.dtype == np.uint16 else 1.0)))
    if rgb.shape[:2] != size:
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)   # the plate's grain is not the screen
    lead, value = channel_lead(rgb, channel)
    if (lead > MIN_LEAD).mean() < MIN_CELL_SHARE:
        raise ValueError("the clean plate shows too little screen: give an image of the empty screen, "
                         "shot with the same camera and light")
    balance = float(np.median(balance_of(rgb, channel)[lead > MIN_LEAD]))
    others = [c for c in range(3) if c != channel]
    tint = (rgb[..., others[1]] + EPS) / (rgb[..., others[0]] + EPS)
    return ScreenModel(channel, np.clip(lead, MIN_LEAD, 1.0).astype(np.float32), value.astype(np.float32), balance,
                       tint.astype(np.float32))
