"""The keyer's banded structure: a per-pixel test settles plain screen and solid subject (exactly 0 and 1), the
rest is solved at full size in tiles, and the result must equal the full-size path's."""

import numpy as np
import pytest
from matte_fixtures import (figure_coverage, lit_screen, mix, shadowed_screen_frame, soft_iou, subject_colours,
                            to_encoded, to_linear)

from backend.params import parse_params
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key
from backend.pipelines import key_band
from backend.pipelines.key_band import BLOCK, banded_key, settled_blocks
from backend.pipelines.key_difference import difference_key, raw_reach, solve_reach
from backend.pipelines.screen_model import estimate_screen, linear_light, screen_from_plate


def hot_lamp_frame(h: int, w: int) -> np.ndarray:
    """The figure on a screen whose channel clips over a patch next to its feet (the raw key looks further there)."""
    y, x = np.mgrid[:h, :w] / h
    hot = 1.0 + 12.0 * np.exp(-(((x - 0.35) ** 2 + (y - 0.85) ** 2) / 0.004))
    screen = to_encoded(np.clip(to_linear(lit_screen(h, w, falloff=0.0)) * hot[..., None], 0.0, 1.0))
    frame = np.clip(np.round(mix(figure_coverage(h, w), subject_colours(h, w), screen)), 0, 255).astype(np.uint8)
    assert (frame[..., 1] == 255).any()
    return frame


def blurred(frame: np.ndarray) -> np.ndarray:
    """The frame moved sideways during the exposure (13 px, in linear light): a fringe many blocks wide."""
    import cv2

    moving = cv2.filter2D(to_linear(frame.astype(np.float32)), -1, np.full((1, 13), 1 / 13, np.float32))
    return np.clip(np.round(to_encoded(moving)), 0, 255).astype(np.uint8)


def veiled(frame: np.ndarray) -> np.ndarray:
    """A grey veil at a third coverage over a patch of screen bigger than a tile, away from the figure: its blocks
    key between the tolerance and the softness' end, all of them (solved, none settled)."""
    out = frame.astype(np.float32)
    veil = np.zeros(frame.shape[:2], np.float32)
    veil[20:100, 8:72] = 0.33
    return np.clip(np.round(mix(veil, np.full_like(out, 128.0), out)), 0, 255).astype(np.uint8)


def dressed_frame(h: int, w: int, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(frame, clean plate): the figure dressed in one colour over a lit screen (the screen from its plate: a figure
    near the screen's colour fills it)."""
    truth = figure_coverage(h, w)
    shade = 0.8 + 0.2 * np.cos(np.linspace(0, np.pi, w))[None, :, None]
    dressed = np.broadcast_to(np.float32(colour) * shade, (h, w, 3))
    screen = lit_screen(h, w, falloff=0.3)
    as_uint8 = lambda image: np.clip(np.round(image), 0, 255).astype(np.uint8)   # noqa: E731
    return as_uint8(mix(truth, dressed, screen)), as_uint8(screen)


# a green that leads almost as much as the screen's, red and blue the other way round: keyed by the tint side only
TURNED_TINT = (75, 190, 10)
# purple with blue over red as the screen's: keyed by the lead side only (the tint side sees the screen's)
SCREENS_TINT = (89, 40, 126)


def tiles_solved(frame: np.ndarray, params, screen) -> np.ndarray:
    """Full-size mask of the tiles that key_band solves at full size."""
    h, w = frame.shape[:2]
    unsettled = settled_blocks(frame, params, screen).unsettled
    tile = key_band.TILE
    per_tile = tile // BLOCK
    mask = np.zeros((h, w), bool)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            blocks = unsettled[y // BLOCK:y // BLOCK + per_tile, x // BLOCK:x // BLOCK + per_tile]
            mask[y:y + tile, x:x + tile] = blocks.any()
    return mask


def away_from_the_edge(shape, params) -> np.ndarray:
    """The two paths repeat the frame's edge differently (the crops at full size, the full path's local means at
    half size): they agree from the solve's reach in."""
    edge = solve_reach(params.edge_radius) + raw_reach()
    inner = np.zeros(shape, bool)
    inner[edge:-edge, edge:-edge] = True
    return inner


@pytest.fixture
def always_banded(monkeypatch):
    """The banded solve even where its crops' context would cost more than the full path, in tiles of 32 pixels
    (the frames here are small: the default tiles would cover most of them)."""
    monkeypatch.setattr(key_band, "FULL_COST", float("inf"))
    monkeypatch.setattr(key_band, "TILE", 32)


@pytest.mark.parametrize("scene", ["shadowed", "hot lamp", "turned tint", "screen's tint", "moving hot lamp",
                                   "veiled hot lamp"])
@pytest.mark.parametrize("edge_radius, size", [(1, (192, 256)), (3, (192, 256)), (2, (201, 263))])
@pytest.mark.parametrize("whole_raw", [False, True])
def test_the_banded_solve_equals_the_full_size_path(scene, edge_radius, size, whole_raw, always_banded, monkeypatch):
    """Odd sizes too: the full path repeats an odd edge once, as the crops do, so the 2x2 pairs match. Near the
    clipped screen the blocks are called from the raw key on crops (whole_raw False) or on the whole frame."""
    monkeypatch.setattr(key_band, "WHOLE_RAW", 0.0 if whole_raw else float("inf"))
    params = parse_params(ChromaKeyParams, {"edge_radius": edge_radius})
    if scene in ("turned tint", "screen's tint"):
        frame, plate = dressed_frame(*size, TURNED_TINT if scene == "turned tint" else SCREENS_TINT)
        screen = screen_from_plate(plate, 1, plate.shape[:2])
    else:
        frame = shadowed_screen_frame(*size)[0] if scene == "shadowed" else hot_lamp_frame(*size)
        frame = {"moving hot lamp": blurred, "veiled hot lamp": veiled}.get(scene, lambda image: image)(frame)
        screen = estimate_screen([linear_light(frame)], 1)
    (bys, bxs), b_straight, banded = banded_key(frame, params, screen)
    (fys, fxs), f_straight, full = difference_key(linear_light(frame), params, screen)
    band = tiles_solved(frame, params, screen)
    assert 0.1 < band.mean() < 0.8                              # the outline is solved, much of the frame is not
    settled = set(np.unique(banded[~band]).tolist())
    # exactly screen or subject (near the clipped screen too: there from the raw key itself); the turned tint's
    # body keys under the softness' end, so nothing of it settles as subject
    assert settled == {0.0, 1.0} if scene in ("shadowed", "hot lamp", "screen's tint") else (
        settled <= {0.0, 1.0} and 0.0 in settled)
    if scene in ("moving hot lamp", "veiled hot lamp"):   # blocks wholly inside a fringe: solved, not settled
        assert ((full > 0.05) & (full < 0.95) & band).sum() > 500
    inner = away_from_the_edge(band.shape, params)
    assert np.array_equal(banded[inner], full[inner])
    # the fringe's straight colour too, pixel for pixel
    banded_colour = {(y, x): c for y, x, c in zip(bys.tolist(), bxs.tolist(), b_straight.tolist())}
    full_colour = {(y, x): c for y, x, c in zip(fys.tolist(), fxs.tolist(), f_straight.tolist()) if inner[y, x]}
    assert full_colour and all(banded_colour[key] == c for key, c in full_colour.items())


def test_the_band_path_is_the_default_and_keys_as_well(always_banded):
    frame, truth, _, _ = shadowed_screen_frame(192, 256)
    banded = chroma_key(frame, parse_params(ChromaKeyParams, {}))[1]
    full = chroma_key(frame, parse_params(ChromaKeyParams, {"solve": "full"}))[1]
    assert soft_iou(banded, truth) >= 0.98 and abs(soft_iou(banded, truth) - soft_iou(full, truth)) < 1e-3


def test_a_faint_thin_strand_alone_on_the_screen_is_still_solved(always_banded):
    """A ginger strand a pixel wide at a sixth coverage, far from the figure: its blocks are almost all screen and
    their mean keys as screen (the strand raises red, not blue, the screen's larger other channel)."""
    h, w = 192, 256
    frame, _, _, _ = shadowed_screen_frame(h, w, noise=0.0)
    strand = np.zeros((h, w), np.float32)
    strand[20:170, 30] = 0.15
    hair = mix(strand, np.broadcast_to(np.float32([200, 120, 60]), (h, w, 3)), frame.astype(np.float32))
    frame = np.clip(np.round(hair), 0, 255).astype(np.uint8)
    banded = chroma_key(frame, parse_params(ChromaKeyParams, {}))[1]
    full = chroma_key(frame, parse_params(ChromaKeyParams, {"solve": "full"}))[1]
    assert full[25:165, 30].mean() > 0.1                         # the full-size key sees the strand
    assert np.array_equal(banded[25:165, 30], full[25:165, 30])


@pytest.mark.parametrize("whole_raw", [False, True])
def test_where_the_tiles_would_cost_more_the_full_path_solves(monkeypatch, whole_raw):
    """Where the tiles with their context would cost more than the frame, nothing is settled and the full path
    keys the frame (from the whole frame's raw key when that was made already): its alpha to the frame's edge."""
    frame = hot_lamp_frame(192, 256)
    params = parse_params(ChromaKeyParams, {"edge_radius": 1})   # the paths take a measured radius (chroma_key measures 0)
    screen = estimate_screen([linear_light(frame)], 1)
    monkeypatch.setattr(key_band, "WHOLE_RAW", 0.0 if whole_raw else float("inf"))
    monkeypatch.setattr(key_band, "FULL_COST", float("inf"))
    assert settled_blocks(frame, params, screen).groups
    monkeypatch.setattr(key_band, "FULL_COST", 0.01)
    settled = settled_blocks(frame, params, screen)
    assert settled.groups is None and settled.keyed is not None if whole_raw else settled is None
    full = difference_key(linear_light(frame), params, screen)
    banded = banded_key(frame, params, screen)
    assert np.array_equal(banded[2], full[2]) and np.array_equal(banded[1], full[1])


def test_the_default_tiles_on_a_larger_frame():
    """The default tile size and cost rule, on a frame big enough for them to settle much of it."""
    frame = shadowed_screen_frame(540, 960)[0]
    params = parse_params(ChromaKeyParams, {"edge_radius": 1})
    screen = estimate_screen([linear_light(frame)], 1)
    settled = settled_blocks(frame, params, screen)
    assert settled is not None and settled.groups and settled.keyed is None
    band = tiles_solved(frame, params, screen)
    assert 0.1 < band.mean() < 0.8
    inner = away_from_the_edge(band.shape, params)
    assert np.array_equal(banded_key(frame, params, screen)[2][inner], difference_key(linear_light(frame), params, screen)[2][inner])
