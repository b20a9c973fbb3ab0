"""Where the difference keyer solves at full size: only the tiles where alpha can be other than exactly 0 or 1.

Per block of BLOCK x BLOCK pixels, the least and most of each channel (8-bit max/min pooling, a few cheap passes)
bound every pixel's raw key (key_difference.raw_key: the larger of the screen's lead lost and its tint turned)
against the tolerance and the softness' end, using the screen model's per-pixel lead and tint. Where the
bound says every pixel of a block and of its neighbours keys within the tolerance, the full-size path gives
exactly 0 there; where every pixel within edge_radius of the block keys past the softness' end, exactly 1 (not
next to a clipped screen, where raw_key takes the screen's lead locally). Tiles of TILE pixels holding any other
block (the outline, strands, a colour near the screen's, a noisy speck) go through key_difference's raw key and
fringe solve on crops that carry the solve's reach of context, so alpha there is the full-size path's too.

The crops of all those tiles are packed into one image (runs of neighbouring tiles along rows side by side, or
along columns one under the other, whichever is fewer pixels), so the full-size work is a few OpenCV calls on a
fraction of the frame. Where that fraction with its context would cost more than the frame, difference_key keys
the whole frame instead (the same alpha).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from backend.pipelines.key_difference import (BALANCE, HOT, SIGMA_PER_RADIUS, TINT_GAIN, difference_key, key_limits,
                                              raw_key, raw_reach, solve_part, solve_reach)
from backend.pipelines.screen_model import EPS, MIN_LEAD, ScreenModel, linear_light
from backend.pipelines.srgb import LINEAR_OF_U8

if TYPE_CHECKING:
    from backend.pipelines.chroma_key import ChromaKeyParams

BLOCK = 4                # pixels per side of the blocks the frame is settled in
TILE = 64                # pixels per side of the unit that is either settled or solved at full size (its crop
                         # carries solve_reach of context each side: at 32 a wide fringe radius's context is most of it)
SLACK = 0.02             # raw-key margin of the per-pixel bounds (float rounding differs from raw_key's)
WHOLE_RAW = 0.15         # past this share of the frame near a clipped screen, its raw key is made for all of it
FULL_COST = 0.7          # the band is taken while its estimated work is under this share of the full path's: the
                         # estimate leaves out the settling and the packing (measured band / full ~1.4x it, 1080p)
_LINEAR_FLOORED = np.maximum(LINEAR_OF_U8, EPS)  # raw_key divides by max(screen channel, EPS)
_HOT_U8 = int(np.searchsorted(LINEAR_OF_U8, HOT))  # 8-bit code of the keyer's HOT level


def banded_key(color: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel
               ) -> tuple[tuple[np.ndarray, np.ndarray] | None, np.ndarray | None, np.ndarray]:
    """difference_key's (fringe indices, straight colour, alpha) of an 8-bit sRGB frame, solved at full size only
    in the tiles where alpha can be fractional (or, where that would cost more, by difference_key itself).
    `screen`: the shot's screen model at the frame's size."""
    h, w = color.shape[:2]
    if screen.lead.shape != (h, w):
        raise ValueError(f"the screen model is {screen.lead.shape[1]}x{screen.lead.shape[0]} but the frame is "
                         f"{w}x{h}: key frames of one size per shot")
    color = np.ascontiguousarray(color[..., :3])
    settled = settled_blocks(color, params, screen)
    if settled is None:
        return difference_key(linear_light(color), params, screen)
    if settled.groups is None:      # the whole frame's raw key made, the full path's solve is quicker
        rgb, raw = settled.keyed
        return difference_key(rgb, params, screen, raw)
    alpha = _upsample(settled.subject, (h, w))
    if not settled.groups:
        return None, None, alpha
    found = [_solve_rects(color, screen, params, rects, axis, margin, alpha, settled.keyed)
             for rects, axis, margin in settled.groups]
    ys, xs, straight = (np.concatenate(parts) for parts in zip(*found))
    return (ys, xs), straight, alpha


class Settled(NamedTuple):
    subject: np.ndarray      # per block: settled solid subject (alpha exactly 1)
    unsettled: np.ndarray    # per block: neither settled subject nor settled screen (alpha exactly 0)
    near_hot: np.ndarray     # per tile: near a clipped screen
    groups: list | None      # _solve_groups: what to solve at full size (None: let the full path solve, from `keyed`)
    keyed: tuple[np.ndarray, np.ndarray] | None   # (linear frame, raw key) when the raw key was made for all of it


def settled_blocks(color: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel) -> Settled | None:
    """The frame's blocks settled, and what is left to solve; None when the full path would take less (_full_work).

    Near a clipped screen the blocks are called from the raw key itself: on crops around those tiles, or, where
    they cover much of the frame (WHOLE_RAW), on the whole frame, which the solve then reuses."""
    h, w = color.shape[:2]
    blocks = _pooled(color, screen.channel)
    hot = _hot_blocks(blocks, screen.balance)
    # tiles whose raw key may take the clipped screen's correction, and tiles whose crops' raw key may
    near_hot = _near_hot_tiles(hot, h, w, solve_reach(params.edge_radius) + raw_reach())
    hot_runs = _rects(_near_hot_tiles(hot, h, w, raw_reach()), axis=1)
    hot_work = _area(hot_runs, _hot_margin())
    if hot_work > WHOLE_RAW * h * w:
        return _settled_by_raw_key(color, params, screen, near_hot)
    screen_like, solid, maybe_solid = bound_blocks(blocks, params, screen)
    if hot_runs:
        _key_near_hot(color, screen, params, hot_runs, screen_like, solid, maybe_solid)
    subject, unsettled = settle(screen_like, solid, maybe_solid, params)
    groups = _solve_groups(unsettled, near_hot, params, h, w)
    if hot_work + _solve_work(groups, params.edge_radius) > FULL_COST * _full_work(subject, unsettled, params, h, w):
        return None
    return Settled(subject, unsettled, near_hot, groups, None)


def _settled_by_raw_key(color: np.ndarray, params: "ChromaKeyParams", screen: ScreenModel, near_hot: np.ndarray
                        ) -> Settled | None:
    """settled_blocks from the raw key of the whole frame (exact everywhere, so no tile needs the clipped screen's
    extra context)."""
    h, w = color.shape[:2]
    rgb = linear_light(color)
    raw = raw_key(rgb, screen)
    lo, hi = key_limits(params)
    whole = cv2.copyMakeBorder(raw, 0, -h % BLOCK, 0, -w % BLOCK, cv2.BORDER_REPLICATE)
    most = _pool(whole, cv2.max)
    subject, unsettled = settle(most <= lo, _pool(whole, cv2.min) >= hi, most >= hi, params)
    cool = np.zeros_like(near_hot)
    groups = _solve_groups(unsettled, cool, params, h, w)
    full_solve = _full_work(subject, unsettled, params, h, w) - h * w
    if _solve_work(groups, params.edge_radius, raw_made=True) > FULL_COST * full_solve:
        groups = None          # the raw key made: the band's solve against the full path's solve alone
    return Settled(subject, unsettled, cool, groups, (rgb, raw))


Rect = tuple[int, int, int, int]      # y0, y1, x0, x1: whole tiles (the last may pass the frame's edge)


def _solve_groups(unsettled: np.ndarray, near_hot: np.ndarray, params: "ChromaKeyParams", h: int, w: int
                  ) -> list[tuple[list[Rect], int, int]]:
    """(rects, packing axis, margin) of the tiles to solve: runs of neighbouring tiles along rows or along columns,
    whichever packs into fewer pixels with the context (a standing figure's outline runs down: columns); those near
    a clipped screen carry the raw key's reach more context."""
    tiles = _tile_grid(unsettled, h, w)
    solve = _even(solve_reach(params.edge_radius))
    groups = []
    for part, margin in ((tiles & ~near_hot, solve), (tiles & near_hot, _even(solve + raw_reach()))):
        if part.any():
            rows, columns = _rects(part, axis=1), _rects(part, axis=0)
            groups.append(min((rows, 1, margin), (columns, 0, margin), key=lambda g: _area(g[0], margin)))
    return groups


def _solve_cost(radius: int) -> float:
    """What solving a pixel costs against raw-keying it: about as much at edge_radius 1 (bench/matte.py's shots at
    1080p), and half of it grows with the local means' blur kernel, which widens with the radius."""
    sigma = SIGMA_PER_RADIUS * radius + 1.0
    return 0.5 + 0.5 * (2 * round(2 * sigma) + 1) / 13


def _solve_work(groups: list[tuple[list[Rect], int, int]], radius: int, raw_made: bool = False) -> float:
    """The banded solve's work, in pixels raw-keyed: its crops raw-keyed (unless `raw_made`) and solved."""
    return (_solve_cost(radius) + (0 if raw_made else 1)) * sum(_area(rects, margin) for rects, _, margin in groups)


def _full_work(subject: np.ndarray, unsettled: np.ndarray, params: "ChromaKeyParams", h: int, w: int) -> float:
    """The full path's work in the same units: the whole frame raw-keyed, then solved over the box around what is not
    plain screen (key_difference.difference_key), the blocks' box being a bound of it."""
    keyed = subject | unsettled
    rows, cols = np.nonzero(keyed.any(1))[0], np.nonzero(keyed.any(0))[0]
    if not len(rows):
        return float(h * w)
    reach = solve_reach(params.edge_radius)
    box_h = min((rows[-1] + 1) * BLOCK + reach, h) - max(rows[0] * BLOCK - reach, 0)
    box_w = min((cols[-1] + 1) * BLOCK + reach, w) - max(cols[0] * BLOCK - reach, 0)
    return float(h * w + _solve_cost(params.edge_radius) * box_h * box_w)


def _area(rects: list[Rect], margin: int) -> int:
    """Pixels in the rects' crops with `margin` of context."""
    return sum((y1 - y0 + 2 * margin) * (x1 - x0 + 2 * margin) for y0, y1, x0, x1 in rects)


def _solve_rects(color: np.ndarray, screen: ScreenModel, params: "ChromaKeyParams", rects: list[Rect], axis: int,
                 margin: int, alpha: np.ndarray, keyed: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the rects at full size (packed along `axis`, with `margin` pixels of context), write their alpha into
    `alpha`; return the frame's (ys, xs) of the fringe pixels in the rects and their straight colour. `keyed`: the
    whole frame's (linear colour, raw key), cut from instead of made again."""
    packed_screen = _packed_screen(screen, rects, margin, axis)
    if keyed is None:
        packed = linear_light(_pack(color, rects, margin, axis))
        raw = raw_key(packed, packed_screen)
    else:
        packed, raw = _pack(keyed[0], rects, margin, axis), _pack(keyed[1], rects, margin, axis)
    part, fringe, straight = solve_part(packed, raw, params, packed_screen)
    ys, xs, inner = _unpack(alpha, part, rects, margin, axis, fringe)
    return ys, xs, straight[inner]


def _packed_screen(screen: ScreenModel, rects: list[Rect], margin: int, axis: int) -> ScreenModel:
    """The screen model cut and packed as _pack cuts and packs the frame."""
    cut = lambda image: _pack(image, rects, margin, axis)   # noqa: E731
    return ScreenModel(screen.channel, cut(screen.lead), cut(screen.level), screen.balance, cut(screen.tint))


def _hot_margin() -> int:
    """Context around the tiles near a clipped screen for their raw key: its reach, in whole blocks (so that the
    crops' blocks are the frame's)."""
    return -(-raw_reach() // BLOCK) * BLOCK


def _key_near_hot(color: np.ndarray, screen: ScreenModel, params: "ChromaKeyParams", rects: list[Rect],
                  screen_like: np.ndarray, solid: np.ndarray, maybe_solid: np.ndarray) -> None:
    """Near a clipped screen the bounds do not hold (raw_key takes the screen's lead locally there): the blocks of
    those tiles (`rects`, one tile high) are called from the raw key itself, made on their packed crops with its
    reach of context."""
    margin = _hot_margin()
    raw = raw_key(linear_light(_pack(color, rects, margin, 1)), _packed_screen(screen, rects, margin, 1))
    most, least = _pool(raw, cv2.max), _pool(raw, cv2.min)
    lo, hi = key_limits(params)
    skip, at = margin // BLOCK, 0
    for y0, y1, x0, x1 in rects:
        rows = slice(y0 // BLOCK, min(y1 // BLOCK, screen_like.shape[0]))
        cols = slice(x0 // BLOCK, min(x1 // BLOCK, screen_like.shape[1]))
        part = (slice(skip, skip + rows.stop - rows.start), slice(at + skip, at + skip + cols.stop - cols.start))
        screen_like[rows, cols] = most[part] <= lo
        solid[rows, cols] = least[part] >= hi
        maybe_solid[rows, cols] = most[part] >= hi
        at += (x1 - x0) // BLOCK + 2 * skip


def _even(n: int) -> int:
    """n rounded up to even: crops then start at even places (see key_difference._even_span)."""
    return n + n % 2


def bound_blocks(blocks: dict[str, np.ndarray], params: "ChromaKeyParams", screen: ScreenModel
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(screen-like, solid, maybe solid) per block, from the bounds of its pixels' raw keys. `blocks`: _pooled of
    the frame.

    Screen-like: both sides of the raw key at most the tolerance, every pixel. Solid: one side past the softness'
    end (the key is the larger side), every pixel. Maybe solid: some pixel may key past the softness' end. Away
    from a clipped screen: there raw_key takes the screen's lead locally.
    """
    lo, hi = key_limits(params)
    bound = _block_bounds(screen, lo - SLACK, hi + SLACK, hi - SLACK)
    f_lo, f_hi, s_lo, s_hi = (cv2.LUT(blocks[k], LINEAR_OF_U8)
                              for k in ("first min", "first max", "second min", "second max"))
    v_lo, v_hi = cv2.LUT(blocks["screen min"], _LINEAR_FLOORED), cv2.LUT(blocks["screen max"], _LINEAR_FLOORED)
    # lead side: the others' largest as a share of the screen channel; lead lost = 1 - (1 - share) / lead
    share_max, share_min = cv2.divide(cv2.max(f_hi, s_hi), v_lo), cv2.divide(cv2.max(f_lo, s_lo), v_hi)
    # tint side: |second - tint * first|, bounded over the block's ranges of the three
    off_max = cv2.max(cv2.subtract(s_hi, cv2.multiply(bound["tint min"], f_lo)),
                      cv2.subtract(cv2.multiply(bound["tint max"], f_hi), s_lo))
    off_min = cv2.max(cv2.subtract(s_lo, cv2.multiply(bound["tint max"], f_hi)),
                      cv2.subtract(cv2.multiply(bound["tint min"], f_lo), s_hi))
    screen_like = ((share_max <= bound["share lo"]) & (off_max <= bound["tint lo"] * v_lo)
                   & (blocks["screen min"] > 0))        # a black pixel: lead 0 / EPS, raw key 1
    solid = (share_min >= bound["share hi"]) | (off_min >= bound["tint hi"] * v_hi)
    maybe_solid = ((share_max >= bound["share edge"]) | (off_max >= bound["tint edge"] * v_lo)
                   | (blocks["screen min"] == 0))
    return screen_like, solid, maybe_solid


def settle(screen_like: np.ndarray, solid: np.ndarray, maybe_solid: np.ndarray, params: "ChromaKeyParams"
           ) -> tuple[np.ndarray, np.ndarray]:
    """(settled subject, unsettled) per block. Screen: screen-like, and no neighbouring block maybe solid (the
    fringe solve takes in the screen-hued pixels next to solid subject, key_difference._unmix). Subject: solid over
    the block and edge_radius around it (the core is eroded by edge_radius)."""
    near_solid = cv2.dilate(maybe_solid.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    screen_blocks = screen_like & ~near_solid
    reach = -(-params.edge_radius // BLOCK)
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    subject_blocks = cv2.erode(solid.view(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return subject_blocks, ~(screen_blocks.astype(bool) | subject_blocks)


def _pooled(color: np.ndarray, channel: int) -> dict[str, np.ndarray]:
    """Per block of the 8-bit frame: the least and most code of the screen channel and of the other two."""
    h, w = color.shape[:2]
    ph, pw = -h % BLOCK, -w % BLOCK
    if ph or pw:
        color = cv2.copyMakeBorder(color, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    least, most = cv2.split(_pool(color, cv2.min)), cv2.split(_pool(color, cv2.max))   # per channel
    first, second = (c for c in range(3) if c != channel)
    return {"first min": least[first], "first max": most[first], "second min": least[second],
            "second max": most[second], "screen min": least[channel], "screen max": most[channel]}


def _pool(image: np.ndarray, op, size: int = BLOCK) -> np.ndarray:
    """Least (op=cv2.min) or most (cv2.max) value over each size x size block (image a whole number of them):
    the op over every size-th row, then over every size-th pixel of the rows (strided views, no kernel pass)."""
    rows = image[0::size]
    for i in range(1, size):
        rows = op(rows, image[i::size])
    h, w = rows.shape[:2]
    depth = rows.shape[2] if rows.ndim == 3 else 1
    flat = np.ascontiguousarray(rows).reshape(h * (w // size), size * depth)
    out = flat[:, 0:depth]
    for i in range(1, size):
        out = op(out, flat[:, i * depth:(i + 1) * depth])
    return out.reshape((h, w // size, depth) if rows.ndim == 3 else (h, w // size))


def _block_bounds(screen: ScreenModel, low: float, high: float, edge: float) -> dict[str, np.ndarray]:
    """Per block, from the screen model's per-pixel lead and tint (once per shot and tolerance): the least share
    (others' largest / screen channel) above which the lead side of the raw key may exceed `low`, and the most
    share below which it may be under `high` (lead lost = 1 - (1 - share) / max(lead, MIN_LEAD / 2)); the tint's range;
    the least factor of the screen channel the departure from the tint must stay under for the tint side to be
    within `low`, and the most it must reach for that side to be past `high`; and the least share and factor past
    which a side may reach `edge`."""
    key = ("block bounds", BLOCK, low, high, edge)
    if key not in screen.derived:
        lead = np.maximum(screen.lead, MIN_LEAD / 2)
        per_tint = lead / (TINT_GAIN * screen.tint_share)
        maps = {"share lo": (1 - (1 - low) * lead, cv2.min), "share hi": (1 - (1 - high) * lead, cv2.max),
                "tint min": (screen.tint, cv2.min), "tint max": (screen.tint, cv2.max),
                "tint lo": (low * per_tint, cv2.min), "tint hi": (high * per_tint, cv2.max),
                "share edge": (1 - (1 - edge) * lead, cv2.min), "tint edge": (edge * per_tint, cv2.min)}
        h, w = lead.shape
        screen.derived[key] = {name: _pool(cv2.copyMakeBorder(np.float32(image), 0, -h % BLOCK, 0, -w % BLOCK,
                                                             cv2.BORDER_REPLICATE), op)
                               for name, (image, op) in maps.items()}
    return screen.derived[key]


def _upsample(subject: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Settled alpha at full size: 1 on settled subject, 0 elsewhere (unsettled tiles are overwritten)."""
    big = cv2.resize(subject.astype(np.float32), (subject.shape[1] * BLOCK, subject.shape[0] * BLOCK),
                     interpolation=cv2.INTER_NEAREST)
    return big if big.shape == size else np.ascontiguousarray(big[:size[0], :size[1]])


def _hot_blocks(blocks: dict[str, np.ndarray], balance: float) -> np.ndarray:
    """Per block: whether it may hold a pixel raw_key treats as clipped screen (its screen channel at the HOT level
    or over, leading the others, the other two in the screen's balance)."""
    most = blocks["screen max"]
    hot = (most >= _HOT_U8) & (most > cv2.max(blocks["first min"], blocks["second min"]))
    if hot.any():      # log((second + 0.01) / (first + 0.01)) over the block can come within BALANCE of the screen's
        f_lo, f_hi, s_lo, s_hi = (cv2.LUT(blocks[k], LINEAR_OF_U8) + 0.01
                                  for k in ("first min", "first max", "second min", "second max"))
        hot &= (np.log(s_hi / f_lo) > balance - BALANCE) & (np.log(s_lo / f_hi) < balance + BALANCE)
    return hot


def _near_hot_tiles(hot: np.ndarray, h: int, w: int, reach: int) -> np.ndarray:
    """Per tile: whether a pixel within `reach` of it may be clipped screen (`hot`: _hot_blocks)."""
    per_tile, near = TILE // BLOCK, -(-(reach + BLOCK - 1) // BLOCK)
    gh, gw = -(-h // TILE), -(-w // TILE)
    grid = np.zeros((gh * per_tile, gw * per_tile), np.uint8)
    grid[:hot.shape[0], :hot.shape[1]] = cv2.dilate(hot.view(np.uint8), np.ones((2 * near + 1, 2 * near + 1), np.uint8))
    return _pool(grid, cv2.max, per_tile).astype(bool)


def _tile_grid(unsettled: np.ndarray, h: int, w: int) -> np.ndarray:
    """Per tile: whether it holds unsettled blocks."""
    tile = TILE // BLOCK
    gh, gw = -(-unsettled.shape[0] // tile), -(-unsettled.shape[1] // tile)
    grid = np.zeros((gh * tile, gw * tile), np.uint8)
    grid[:unsettled.shape[0], :unsettled.shape[1]] = unsettled
    return _pool(grid, cv2.max, tile)[:-(-h // TILE), :-(-w // TILE)].astype(bool)


def _rects(tiles: np.ndarray, axis: int) -> list[Rect]:
    """The runs of neighbouring set tiles along each row (axis=1) or each column (axis=0), as pixel rects."""
    grid = tiles if axis == 1 else tiles.T
    edges = np.diff(np.pad(grid.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    (lines, starts), ends = np.nonzero(edges == 1), np.nonzero(edges == -1)[1]
    runs = zip(lines.tolist(), starts.tolist(), ends.tolist())
    if axis == 1:
        return [(r * TILE, (r + 1) * TILE, a * TILE, b * TILE) for r, a, b in runs]
    return [(a * TILE, b * TILE, c * TILE, (c + 1) * TILE) for c, a, b in runs]


def _crop(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """image[y0:y1, x0:x1], the part outside the image filled by repeating its edge (as the full path's blurs do)."""
    h, w = image.shape[:2]
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    part = image[cy0:cy1, cx0:cx1]
    if (cy0, cy1, cx0, cx1) == (y0, y1, x0, x1):
        return part
    return cv2.copyMakeBorder(part, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)


def _pack(image: np.ndarray, rects: list[Rect], margin: int, axis: int) -> np.ndarray:
    """The rects' crops (each with `margin` pixels of context on every side) side by side (axis=1: rects of one
    height) or one under the other (axis=0: of one width), in one image."""
    return np.concatenate([_crop(image, y0 - margin, y1 + margin, x0 - margin, x1 + margin)
                           for y0, y1, x0, x1 in rects], axis=axis)


def _unpack(alpha: np.ndarray, part: np.ndarray, rects: list[Rect], margin: int, axis: int,
            fringe: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the rects' solved alpha (not the context) into `alpha`; return the frame's (ys, xs) of the fringe
    pixels inside the rects and which of `fringe` they are."""
    size = alpha.shape
    along = np.full(part.shape[axis], -1, np.int64)   # packed line (column for axis=1) -> frame line (-1: context)
    across = np.zeros(part.shape[axis], np.int64)     # packed line -> the frame's coordinate of its crop's start across
    at = 0
    for y0, y1, x0, x1 in rects:
        cy1, cx1 = min(y1, size[0]), min(x1, size[1])
        length = (x1 - x0) if axis == 1 else (y1 - y0)
        if axis == 1:
            alpha[y0:cy1, x0:cx1] = part[margin:margin + cy1 - y0, at + margin:at + margin + cx1 - x0]
            along[at + margin:at + margin + cx1 - x0], start = np.arange(x0, cx1), y0
        else:
            alpha[y0:cy1, x0:cx1] = part[at + margin:at + margin + cy1 - y0, margin:margin + cx1 - x0]
            along[at + margin:at + margin + cy1 - y0], start = np.arange(y0, cy1), x0
        across[at:at + length + 2 * margin] = start - margin
        at += length + 2 * margin
    line, offset = (fringe[1], fringe[0]) if axis == 1 else (fringe[0], fringe[1])
    frame_along, frame_across = along[line], offset + across[line]
    inner = (frame_along >= 0) & (offset >= margin) & (offset < margin + TILE) & (frame_across < size[1 - axis])
    ys, xs = (frame_across, frame_along) if axis == 1 else (frame_along, frame_across)
    return ys[inner], xs[inner], inner
