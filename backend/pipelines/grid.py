"""Keyframe grids: tile n keyframes (and their control maps) into one canvas, diffuse it once, split it back.

Diffusing keyframes together in one image makes them share a style (the seed's spritesheets). The canvas
stays under a maximum side (about 1920 px for SD 1.5, more for SDXL); tiles keep the frames' aspect and a
size that is a multiple of 8 (the latent grid). `split` is the exact inverse of `pack`.

A long shot needs several grids. Each later grid starts with an anchor tile, the last keyframe of the grid
before, and a colour transfer fitted on that tile (see colour.py) is applied to the whole new grid so grids
agree in colour. The anchor's own output is the previous grid's version, already delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from backend.params import ParamError, param
from backend.pipelines.colour import delta_e, fit_transfer

# (grid image HxWx3 uint8, control maps packed in the same layout) -> stylized grid, same shape.
Stylizer = Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]


@dataclass
class GridParams:
    max_side: int = param(1920, min=64, max=8192, help="largest side of a grid canvas in pixels")
    max_tiles: int = param(6, min=1, max=64, help="keyframes per grid (a later grid spends one on its anchor)")
    multiple: int = param(8, choices=[8, 16, 32, 64], help="tile sides are rounded down to a multiple of this")
    colour_match: str = param("mkl", choices=["mkl", "meanstd", "none"], help="colour transfer between grids")

    def validate(self) -> None:
        if self.max_side < self.multiple:
            raise ParamError("max_side", f"{self.max_side} is smaller than one tile step ({self.multiple})")


@dataclass(frozen=True)
class GridLayout:
    count: int
    cols: int
    rows: int
    tile_w: int
    tile_h: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.cols * self.tile_w, self.rows * self.tile_h

    def cell(self, index: int) -> tuple[slice, slice]:
        row, col = divmod(index, self.cols)
        return (slice(row * self.tile_h, (row + 1) * self.tile_h), slice(col * self.tile_w, (col + 1) * self.tile_w))


def grid_layout(count: int, frame_size: tuple[int, int], max_side: int, multiple: int = 8) -> GridLayout:
    """The layout with the largest tiles for `count` frames of `frame_size` (w, h) under `max_side`."""
    if count < 1:
        raise ValueError("a grid needs at least one keyframe")
    width, height = frame_size
    best = None
    for cols in range(1, count + 1):
        rows = -(-count // cols)
        scale = min(max_side / (cols * width), max_side / (rows * height), 1.0)
        tile_w = int(width * scale) // multiple * multiple
        tile_h = int(height * scale) // multiple * multiple
        if tile_w < multiple or tile_h < multiple:
            continue
        key = (tile_w * tile_h, -(cols * rows - count))  # biggest tiles, then fewest empty cells
        if best is None or key > best[0]:
            best = (key, GridLayout(count, cols, rows, tile_w, tile_h))
    if best is None:
        raise ValueError(
            f"{count} frames of {width}x{height} do not fit a {max_side}px grid with {multiple}px tiles; "
            "raise max_side or lower max_tiles"
        )
    return best[1]


def pack(tiles: Sequence[np.ndarray], layout: GridLayout, fill: float = 0) -> np.ndarray:
    """Tiles (each tile_h x tile_w [x C], one dtype) into one canvas; empty cells hold `fill`."""
    if len(tiles) != layout.count:
        raise ValueError(f"layout holds {layout.count} tiles, got {len(tiles)}")
    first = tiles[0]
    canvas = np.full((layout.rows * layout.tile_h, layout.cols * layout.tile_w) + first.shape[2:], fill, first.dtype)
    for index, tile in enumerate(tiles):
        if tile.shape[:2] != (layout.tile_h, layout.tile_w) or tile.shape[2:] != first.shape[2:]:
            raise ValueError(f"tile {index} is {tile.shape}, the layout wants {(layout.tile_h, layout.tile_w)}")
        canvas[layout.cell(index)] = tile
    return canvas


def split(canvas: np.ndarray, layout: GridLayout) -> list[np.ndarray]:
    """The inverse of `pack`: the tiles of a canvas, in order, as copies."""
    if canvas.shape[:2] != (layout.rows * layout.tile_h, layout.cols * layout.tile_w):
        raise ValueError(f"canvas is {canvas.shape[:2]}, the layout is {layout.size[::-1]}")
    return [canvas[layout.cell(i)].copy() for i in range(layout.count)]


def to_tile(image: np.ndarray, layout: GridLayout) -> np.ndarray:
    return cv2.resize(image, (layout.tile_w, layout.tile_h), interpolation=cv2.INTER_AREA)


def from_tile(tile: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    if tile.shape[1::-1] == tuple(frame_size):
        return tile
    return cv2.resize(tile, frame_size, interpolation=cv2.INTER_CUBIC)


def plan_grids(keys: Sequence[int], max_tiles: int) -> list[list[int]]:
    """Keyframes per grid; every grid after the first begins with the last keyframe of the one before."""
    keys = list(keys)
    if max_tiles < 2 and len(keys) > max_tiles:
        raise ValueError("several grids need max_tiles >= 2 (one tile is the anchor)")
    grids = [keys[:max_tiles]]
    rest = keys[max_tiles:]
    while rest:
        take = rest[: max_tiles - 1]
        grids.append([grids[-1][-1]] + take)
        rest = rest[max_tiles - 1 :]
    return grids


@dataclass
class GridReport:
    """Colour difference (mean CIE76 delta E) between each later grid's anchor tile and the previous grid's."""

    frames: list[int] = field(default_factory=list)
    delta_e_before: list[float] = field(default_factory=list)
    delta_e_after: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"anchors": self.frames, "delta_e_before": self.delta_e_before, "delta_e_after": self.delta_e_after}


def stylize_keyframes(
    keys: Sequence[int],
    read_key: Callable[[int], tuple[np.ndarray, dict[str, np.ndarray]]],
    stylizer: Stylizer,
    params: GridParams,
    report: GridReport | None = None,
    done: Callable[[int], np.ndarray | None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, stylized keyframe at frame size) grid by grid; only one grid is held at a time.

    `read_key(frame)` gives the source frame (HxWx3 uint8) and its control maps at frame size.
    `done(frame)`, when given, returns a keyframe stylized by an earlier run (or None): a grid whose
    keyframes are all done is skipped and its last keyframe still anchors the next grid's colours.
    """
    report = report if report is not None else GridReport()
    previous_anchor: np.ndarray | None = None  # the last keyframe of the previous grid, colour-matched
    for grid_keys in plan_grids(keys, params.max_tiles):
        new_keys = grid_keys[1:] if previous_anchor is not None else grid_keys
        if done is not None:
            finished = [done(frame) for frame in new_keys]
            if all(image is not None for image in finished):
                previous_anchor = finished[-1]
                continue
        sources = [read_key(frame) for frame in grid_keys]
        frame_size = sources[0][0].shape[1::-1]
        layout = grid_layout(len(grid_keys), frame_size, params.max_side, params.multiple)
        canvas = pack([to_tile(image, layout) for image, _ in sources], layout)
        control_names = sorted(sources[0][1])
        controls = {name: pack([to_tile(maps[name], layout) for _, maps in sources], layout) for name in control_names}
        stylized = np.asarray(stylizer(canvas, controls))
        if stylized.shape != canvas.shape or stylized.dtype != np.uint8:
            raise ValueError(
                f"the stylizer returned {stylized.shape} {stylized.dtype} for a {canvas.shape} uint8 grid; "
                "it must return an RGB uint8 image of the grid's size"
            )
        tiles = split(stylized, layout)
        if previous_anchor is not None:
            reference = to_tile(previous_anchor, layout)  # the grids' tile sizes may differ
            report.frames.append(grid_keys[0])
            report.delta_e_before.append(delta_e(tiles[0], reference))
            if params.colour_match != "none":
                transfer = fit_transfer(tiles[0], reference, params.colour_match)
                tiles = [transfer.apply(tile) for tile in tiles]
            report.delta_e_after.append(delta_e(tiles[0], reference))
            grid_keys, tiles = grid_keys[1:], tiles[1:]  # the anchor was delivered with the previous grid
        previous_anchor = tiles[-1]
        for frame, tile in zip(grid_keys, tiles):
            yield frame, from_tile(tile, frame_size)
