"""Ink by colour pair (backend/pipelines/ink_pairs.py): a silhouette-only style's lines, told from the background's
own edges by the two colours they separate, redrawn where a fast figure outruns the flow."""

import cv2
import numpy as np
import pytest
import torch

from backend.pipelines import ink_pairs
from backend.pipelines.colour_model import key_model
from backend.pipelines.preview import preview_grade
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from tests.backend.temporal_fixtures import Shot

torch.set_num_threads(1)

GAP = 12


def checker(size: int = 384, square: int = 24) -> np.ndarray:
    """A grainy pink and cream checkerboard: strong edges everywhere, none of them inked by the style."""
    yy, xx = np.mgrid[:size, :size]
    odd = ((yy // square + xx // square) % 2).astype(bool)
    out = np.empty((size, size, 3), np.uint8)
    out[~odd], out[odd] = (190, 80, 60), (240, 225, 170)
    grain = cv2.GaussianBlur(np.random.default_rng(0).normal(0, 25, (size, size)).astype(np.float32), (0, 0), 1.0)
    return np.clip(out + grain[..., None], 0, 255).astype(np.uint8)


def walking(speed: float = 8.0, start: float = 26) -> Shot:
    """A textured disc crossing the checkerboard 8 px a frame (faster than the flow follows over 12-frame gaps)."""
    return Shot(size=(192, 128), count=GAP + 1, pan=(1.5, 0.5), disc_speed=speed, disc_radius=20, disc_start=start,
                background=checker())


def silhouette(shot: Shot, i: int) -> tuple[np.ndarray, np.ndarray]:
    """A Freestyle-like style: the grade with a black line 2-3 px wide astride the disc's edge only; and the line."""
    inside = (shot.layers(i)["alpha"] > 0.5).astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    line = (cv2.dilate(inside, square) - cv2.erode(inside, square)) > 0
    out = preview_grade(shot.frame(i)).copy()
    out[line] = 0
    return out, line


def inked(image: np.ndarray) -> np.ndarray:
    return image.max(axis=2) < 40


def test_the_pair_table_tells_the_silhouette_from_the_backgrounds_own_edges():
    shot = walking()
    model = key_model(shot.frame(0), silhouette(shot, 0)[0], ink=True)
    assert model.loose_ink is not None  # the edges alone do not explain this ink: it is carried
    pairs = ink_pairs.fit(shot.frame(0), model.ink_amount)
    assert pairs.agreement >= ink_pairs.AGREEMENT
    # On another frame (the disc 48 px on): high on the disc's outline, low on the checker's edges (0.47 and 0.008).
    line = silhouette(shot, 6)[1]
    chance = ink_pairs.predict(pairs.tables, shot.frame(6))
    grey = cv2.cvtColor(shot.frame(6), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.2), 60, 140) > 0
    far = cv2.dilate(line.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    assert chance[line].mean() > 0.3, chance[line].mean()
    assert chance[edges & far].mean() < 0.03, chance[edges & far].mean()


def test_a_thick_ring_off_the_edge_is_not_a_pairs():
    # An 8 px ring astride the disc's edge: two colours across the edge explain only its middle (agreement 0.03).
    shot = walking()
    style = preview_grade(shot.frame(0)).copy()
    cv2.circle(style, (26, 64), 20, (0, 0, 0), 8)
    model = key_model(shot.frame(0), style, ink=True)
    assert ink_pairs.fit(shot.frame(0), model.ink_amount).agreement < ink_pairs.AGREEMENT


@pytest.mark.parametrize("speed, start, mixed", [(8.0, 26, False), (9.0, 30, True)],
                         ids=["both-carried", "one-keyframe-on-edges"])
def test_a_fast_figures_outline_comes_out_closed_and_single_mid_gap(speed, start, mixed):
    # The disc outruns the flow: carried, its outline was lost on it (under 5% of the line drawn at frames 3, 6, 9)
    # and left behind on the checker where it was (44-202 stray ink pixels). Redrawn where its colours meet the
    # checker's and kept off where the checker's meet their own: 86-99% drawn, 52-58 stray; in the second shot the
    # last keyframe's lines happen to follow its edges closely enough to be redrawn on edges (ink_model.AGREEMENT),
    # the first's not, and both are carried alike (Propagator._carry_ink_alike): 78-95% drawn, 19-61 stray.
    shot = walking(speed, start)
    kinds = [key_model(shot.frame(k), silhouette(shot, k)[0], ink=True).ink is not None for k in (0, GAP)]
    assert kinds == ([False, True] if mixed else [False, False])
    prev = Keyframe(0, shot.frame(0), {"color": silhouette(shot, 0)[0]})
    nxt = Keyframe(GAP, shot.frame(GAP), {"color": silhouette(shot, GAP)[0]})
    propagator = Propagator(PropagateParams())
    propagator.prepare_gap(prev, nxt, (shot.frame(t) for t in range(1, GAP)))
    out = [propagator.frame(t, shot.frame(t), prev, nxt)["color"] for t in range(GAP + 1)]
    for t in (3, 6, 9):
        line = silhouette(shot, t)[1]
        ink = inked(out[t])
        drawn = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8))[line] > 0  # within a pixel of the line
        stray = ink & (cv2.dilate(line.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0)
        assert drawn.mean() > 0.7, (t, drawn.mean())
        assert stray.sum() < 80, (t, int(stray.sum()))


def test_a_silhouette_walking_into_a_cast_shadow_is_still_inked():
    """Frame t's figure and wall in a shadow no keyframe showed (the Blender clip's figure in the pillar's cast
    shadow): their darker pair still draws the line (ink_pairs.SHADE), and the checker's own darker edges do not."""
    shot = walking()
    model = key_model(shot.frame(0), silhouette(shot, 0)[0], ink=True)
    pairs = ink_pairs.fit(shot.frame(0), model.ink_amount)
    line = silhouette(shot, 6)[1]
    shadow = np.zeros(line.shape, bool)
    shadow[:, 40:150] = True  # over the disc (48 px on) and the checker round it
    frame = shot.frame(6).copy()
    frame[shadow] = (frame[shadow] * 0.62).astype(np.uint8)
    chance = ink_pairs.predict(pairs.tables, frame)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.2), 30, 70) > 0
    background = edges & shadow & ~cv2.dilate(line.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    on_line = line & shadow
    assert on_line.sum() > 100 and background.sum() > 100
    drawn = (chance[on_line] > ink_pairs.HARD[1]).mean()
    stray = (chance[background] > ink_pairs.HARD[1]).mean()
    # 17% drawn and 1.5% stray (51% of the line drawn unshadowed); without the shaded count 0% and 1.5%.
    assert drawn > 0.1, f"only {drawn:.0%} of the shadowed outline is drawn"
    assert stray < 0.03, f"{stray:.1%} of the shadowed checker's edges are inked"


def test_a_pair_one_keyframe_never_showed_keeps_the_others_ink():
    """Two keyframes' tables are pooled by their pixel counts (ink_pairs.pooled), not averaged: a keyframe that never
    saw the figure has no say on the figure's pairs (averaged, it halved their chance and no line was drawn)."""
    shot, empty = walking(), walking(start=-200)  # the second shot's disc is off the frame: its keyframe has no ink
    inked = ink_pairs.fit(shot.frame(0), key_model(shot.frame(0), silhouette(shot, 0)[0], ink=True).ink_amount)
    blank = ink_pairs.fit(empty.frame(0), np.zeros(empty.frame(0).shape[:2], np.float32))
    line = silhouette(shot, 6)[1]
    grey = cv2.cvtColor(shot.frame(6), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.2), 60, 140) > 0
    far = cv2.dilate(line.astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    pooled = ink_pairs.predict(ink_pairs.pooled([inked, blank], [0.5, 0.5]), shot.frame(6))
    averaged = ink_pairs.predict(0.5 * inked.tables + 0.5 * blank.tables, shot.frame(6))
    # Drawn (P over HARD's top) on 26% of the line pooled, none averaged (51% with the inked keyframe alone).
    assert (averaged[line] > ink_pairs.HARD[1]).mean() < 0.05
    assert (pooled[line] > ink_pairs.HARD[1]).mean() > 0.15
    assert pooled[edges & far].mean() < 0.02  # the checker's own edges stay uninked (0.005)
