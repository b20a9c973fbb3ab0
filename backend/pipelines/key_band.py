"""Where the difference keyer solves at full size: only the tiles where alpha can be other than exactly 0 or 1.

A per-pixel test, a few 8-bit and float passes over the frame, bounds each pixel's raw key against the
tolerance and the softness' end (key_difference.raw_key, without its clipped-screen correction, which only lowers
the key). Where every pixel of a block of BLOCK pixels keys at most the tolerance, the full-size path gives
exactly 0 there; where every pixel within edge_radius of the block keys at least the softness' end, it gives
exactly 1 (not next to a clipped screen, where the correction could lower it). Tiles of TILE pixels holding any
other block (the outline, strands, a colour near the screen's, a noisy speck) go through key_difference's raw key
and fringe solve on crops that carry the solve's reach of context, so alpha there is the full-size path's too.

The crops of all those tiles are packed side by side into one image (per row of tiles, runs of neighbouring tiles
as one crop), so the full-size work is a few OpenCV calls on a fraction of the frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from backend.pipelines.key_difference import HOT, TINT_GAIN, key_limits, raw_key, raw_reach, solve_part, solve_reach
from backend.pipelines.screen_model import EPS, MIN_LEAD, ScreenModel, linear_light
from backend.pipelines.srgb import srgb_to_linear

if TYPE_CHECKING:
    from backend.pipelines.chroma_key import ChromaKeyParams

BLOCK = 4                # pixels per side of the blocks the frame is settled in
TILE = 32                # pixels per side of the unit that is either settled or solved at full size
SLACK = 0.02             # raw-key margin of the per-pixel bounds (float rounding differs from raw_key's)
_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
_LINEAR_FLOORED = np.maximum(_LINEAR, EPS)          # raw_key divides by max(screen channel, EPS)
_HOT_U8 = int(np.searchsorted(_LINEAR, HOT))         # 8-bit code of the keyer's HOT level


def banded_key(color: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel
               ) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None, np.ndarray]:
    """difference_key's (fringe indices, straight colour, alpha) of an 8-bit sRGB frame, solved at full size only
    in the tiles where alpha can be fractional. `screen`: the shot's screen model at the frame's size."""
    h, w = color.shape[:2]
    if screen.lead.shape != (h, w):
        raise ValueError(f"the screen model is {screen.lead.shape[1]}x{screen.lead.shape[0]} but the frame is "
                         f"{w}x{h}: key frames of one size per shot")
    color = np.ascontiguousarray(color[..., :3])
    solve = _even(solve_reach(params.edge_radius))
    near_hot = _near_hot_tiles(color, screen.channel, h, w, solve + raw_reach())
    subject, unsettled = settle(color, params, screen, near_hot)
    alpha = _upsample(subject, (h, w))
    runs = _runs(unsettled, h, w)
    if not runs:
        return None, None, alpha
    # the raw key looks further around where the screen may clip: runs near such pixels carry more context
    wide = [run for run in runs if near_hot[run[0], run[1]:run[2]].any()]
    narrow = [run for run in runs if not near_hot[run[0], run[1]:run[2]].any()]
    found = [_solve_runs(color, screen, params, group, margin, alpha)
             for group, margin in ((narrow, solve), (wide, _even(solve + raw_reach()))) if group]
    ys, xs, straight = (np.concatenate(parts) for parts in zip(*found))
    return (ys, xs), straight, alpha


def _solve_runs(color: np.ndarray, screen: ScreenModel, params: "ChromaKeyParams", runs: list[tuple[int, int, int]],
                margin: int, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the runs' tiles at full size (packed, with `margin` pixels of context), write their alpha into `alpha`;
    return the frame's (ys, xs) of the fringe pixels in the tiles and their straight colour."""
    packed_screen = ScreenModel(screen.channel, _pack(screen.lead, runs, margin), _pack(screen.level, runs, margin),
                                screen.balance, _pack(screen.tint, runs, margin))
    packed = linear_light(_pack(color, runs, margin))
    part, fringe, straight = solve_part(packed, raw_key(packed, packed_screen), params, packed_screen)
    ys, xs, inner = _unpack(alpha, part, runs, margin, fringe)
    return ys, xs, straight[inner]


def _even(n: int) -> int:
    """n rounded up to even: crops then start at even places (see key_difference._even_span)."""
    return n + n % 2


def settle(color: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel, near_hot: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """(settled subject, unsettled) per block of BLOCK pixels. `near_hot`: _near_hot_tiles of the frame.

    The raw key is max(lead lost, tint turned) (key_difference.raw_key); here both sides are bounded per pixel
    with the screen model's lead, which is what raw_key uses away from a clipped screen. Screen: both sides at
    most the tolerance, also in the neighbouring blocks (the fringe solve takes in the pixels next to solid
    subject, key_difference._unmix). Subject: either side at least the softness' end (the key is the larger
    side), over the block and edge_radius around it (the core is eroded by edge_radius). Next to a clipped
    screen raw_key takes the screen's lead locally, which moves both sides: nothing settles there.
    """
    lo, hi = key_limits(params)
    share_lo, share_hi, tint_lo, tint_hi = _bounds(screen, lo - SLACK, hi + SLACK)
    planes = cv2.split(color)
    first, second = (cv2.LUT(planes[c], _LINEAR) for c in range(3) if c != screen.channel)
    value = cv2.LUT(planes[screen.channel], _LINEAR_FLOORED)
    # lead side: the others' largest as a share of the screen channel; raw's lead lost = 1 - (1 - share) / lead
    share = cv2.divide(cv2.max(first, second), value)
    off_tint = cv2.absdiff(second, cv2.multiply(first, screen.tint))
    over_lo = (cv2.compare(share, share_lo, cv2.CMP_GT) | cv2.compare(off_tint, cv2.multiply(value, tint_lo), cv2.CMP_GT)
               | cv2.compare(planes[screen.channel], 0, cv2.CMP_EQ))
    under_hi = cv2.compare(share, share_hi, cv2.CMP_LT) & cv2.compare(off_tint, cv2.multiply(value, tint_hi), cv2.CMP_LT)
    near = np.ones((3, 3), np.uint8)
    screen_blocks = cv2.erode((reduce_frame(over_lo, BLOCK) == 0).view(np.uint8), near, borderType=cv2.BORDER_REPLICATE)
    reach = -(-params.edge_radius // BLOCK)
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    solid = cv2.erode((reduce_frame(under_hi, BLOCK) == 0).view(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    per_tile = TILE // BLOCK
    cool = ~np.repeat(np.repeat(near_hot, per_tile, 0), per_tile, 1)[:solid.shape[0], :solid.shape[1]]
    subject_blocks = solid.astype(bool) & cool
    return subject_blocks, ~((screen_blocks.astype(bool) & cool) | subject_blocks)


def _bounds(screen: ScreenModel, low: float, high: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel, from the screen model (once per shot and tolerance): the share (others' largest / screen channel)
    above which the lead side of the raw key exceeds `low`, the share below which it is under `high`
    (lead lost = 1 - (1 - share) / max(lead, MIN_LEAD / 2)), and the factors of the screen channel above which the
    departure from the tint, |second - tint * first|, takes the tint side over `low`, and over `high`."""
    key = ("bounds", low, high)
    if key not in screen.derived:
        lead = np.maximum(screen.lead, MIN_LEAD / 2)
        per_tint = lead / (TINT_GAIN * screen.tint_share)
        screen.derived[key] = ((1 - (1 - low) * lead).astype(np.float32), (1 - (1 - high) * lead).astype(np.float32),
                               (low * per_tint).astype(np.float32), (high * per_tint).astype(np.float32))
    return screen.derived[key]


def reduce_frame(image: np.ndarray, scale: int) -> np.ndarray:
    """The image at 1/scale size (scale a power of 2), each pixel the mean of a scale x scale block (edges repeated
    to whole blocks; a block of an 8-bit 0/255 mask is nonzero when any pixel is). Halved step by step: OpenCV's
    area mean by 2 is a quarter of the time of its mean by 4."""
    h, w = image.shape[:2]
    ph, pw = -h % scale, -w % scale
    if ph or pw:
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    while scale > 1:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
        scale //= 2
    return image


def _upsample(subject: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Settled alpha at full size: 1 on settled subject, 0 elsewhere (unsettled tiles are overwritten)."""
    big = cv2.resize(subject.view(np.uint8), (subject.shape[1] * BLOCK, subject.shape[0] * BLOCK),
                     interpolation=cv2.INTER_NEAREST)
    return big[:size[0], :size[1]].astype(np.float32)


def _near_hot_tiles(color: np.ndarray, channel: int, h: int, w: int, reach: int) -> np.ndarray:
    """Per tile: whether a pixel within `reach` of it has its screen channel at the keyer's HOT level or over
    (the raw key's clipped-screen correction reaches raw_reach from such pixels)."""
    level = cv2.extractChannel(color, channel)
    gh, gw = -(-h // TILE), -(-w // TILE)
    if gh * TILE != h or gw * TILE != w:
        level = cv2.copyMakeBorder(level, 0, gh * TILE - h, 0, gw * TILE - w, cv2.BORDER_CONSTANT, value=0)
    rows = level.reshape(gh, TILE, gw * TILE).max(axis=1)
    hot = (rows.reshape(gh, gw, TILE).max(axis=2) >= _HOT_U8).astype(np.uint8)
    tiles = -(-reach // TILE)
    return cv2.dilate(hot, np.ones((2 * tiles + 1, 2 * tiles + 1), np.uint8)).astype(bool)


def _runs(unsettled: np.ndarray, h: int, w: int) -> list[tuple[int, int, int]]:
    """(row, first column, end column) of each run of neighbouring tiles holding unsettled blocks, in tile units."""
    tile = TILE // BLOCK
    gh, gw = -(-unsettled.shape[0] // tile), -(-unsettled.shape[1] // tile)
    grid = np.zeros((gh * tile, gw * tile), np.uint8)
    grid[:unsettled.shape[0], :unsettled.shape[1]] = unsettled
    tiles = grid.reshape(gh, tile, gw, tile).max(axis=(1, 3))
    tiles = tiles[:-(-h // TILE), :-(-w // TILE)]   # the reduced frame's last tile may pass the frame's
    edges = np.diff(np.pad(tiles.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    starts, ends = np.nonzero(edges == 1), np.nonzero(edges == -1)
    return list(zip(starts[0].tolist(), starts[1].tolist(), ends[1].tolist()))


def _crop(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """image[y0:y1, x0:x1], the part outside the image filled by repeating its edge (as the full path's blurs do)."""
    h, w = image.shape[:2]
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    part = image[cy0:cy1, cx0:cx1]
    if (cy0, cy1, cx0, cx1) == (y0, y1, x0, x1):
        return part
    return cv2.copyMakeBorder(part, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)


def _pack(image: np.ndarray, runs: list[tuple[int, int, int]], margin: int) -> np.ndarray:
    """The runs' crops (each with `margin` pixels of context on every side) side by side in one image."""
    return np.concatenate([_crop(image, r * TILE - margin, (r + 1) * TILE + margin, a * TILE - margin, b * TILE + margin)
                           for r, a, b in runs], axis=1)


def _unpack(alpha: np.ndarray, part: np.ndarray, runs: list[tuple[int, int, int]], margin: int,
            fringe: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the runs' solved alpha (their tiles, not the context) into `alpha`; return the frame's (ys, xs) of the
    fringe pixels inside the tiles and which of `fringe` they are."""
    h, w = alpha.shape
    width = part.shape[1]
    frame_x = np.full(width, -1, np.int64)    # packed column -> frame column (-1: context or past the frame)
    frame_y0 = np.zeros(width, np.int64)       # packed column -> the frame row of its crop's first tile row
    at = 0
    for r, a, b in runs:
        y0, x0, x1 = r * TILE, a * TILE, min(b * TILE, w)
        y1 = min(y0 + TILE, h)
        alpha[y0:y1, x0:x1] = part[margin:margin + y1 - y0, at + margin:at + margin + x1 - x0]
        frame_x[at + margin:at + margin + x1 - x0] = np.arange(x0, x1)
        frame_y0[at:at + (b - a) * TILE + 2 * margin] = y0 - margin
        at += (b - a) * TILE + 2 * margin
    ys, xs = fringe[0] + frame_y0[fringe[1]], frame_x[fringe[1]]
    inner = (xs >= 0) & (fringe[0] >= margin) & (fringe[0] < margin + TILE) & (ys < h)
    return ys[inner], xs[inner], inner
