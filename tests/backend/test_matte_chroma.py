"""Chroma key on a synthetic green-screen figure whose true alpha is known, edges antialiased."""

import numpy as np
import pytest
from matte_fixtures import SCREEN, green_screen_frame, soft_iou

from backend.params import parse_params
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key


def key(frame, **values):
    return chroma_key(frame, parse_params(ChromaKeyParams, values))


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_green_screen_figure_keys_to_its_true_alpha(noise):
    frame, truth = green_screen_frame(128, 128, spill=0.1, noise=noise)
    _, alpha = key(frame)
    assert alpha.dtype == np.float32 and alpha.shape == truth.shape
    assert soft_iou(alpha, truth) >= 0.98


def test_unmixed_edges_beat_a_plain_distance_ramp():
    frame, truth = green_screen_frame(128, 128)
    fringe = (truth > 0.05) & (truth < 0.95)
    errors = {edges: np.abs(key(frame, edges=edges)[1] - truth)[fringe].mean() for edges in ("unmix", "ramp")}
    assert errors["unmix"] < 0.5 * errors["ramp"]


def test_blue_screen_keys_too():
    frame, truth = green_screen_frame(96, 96)
    blue = frame[..., [0, 2, 1]]   # the same shot on a blue screen: swap green and blue
    _, alpha = key(blue, screen="blue")
    assert soft_iou(alpha, truth) >= 0.98


def green_excess(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


def test_despill_removes_green_from_the_fringe():
    frame, truth = green_screen_frame(128, 128, spill=0.4)
    fringe = (truth > 0.3) & (truth < 0.97)   # subject-side edge, where the screen's light spills
    assert green_excess(frame)[fringe].mean() > 20          # the footage does carry spill
    kept, _ = key(frame, edges="ramp", despill=0.0)          # ramp edges leave the screen's share in the colour
    cleaned, _ = key(frame, edges="ramp", despill=1.0)
    assert green_excess(kept)[fringe].mean() > 20
    assert green_excess(cleaned)[fringe].max() <= 0.5       # no pixel of the fringe is greener than its red/blue
    default, _ = key(frame)                                  # unmixed edges, then despill
    assert green_excess(default)[fringe].max() <= 0.5


def test_the_sampled_screen_colour_matters_for_a_real_screen():
    frame, truth = green_screen_frame(96, 96)
    _, pure = key(frame, model="distance", sample_screen=False)   # the distance keyer on pure (0, 255, 0) misses
    _, sampled = key(frame, model="distance")                     # a real, duller screen
    assert soft_iou(sampled, truth) > soft_iou(pure, truth) + 0.3
    assert SCREEN[1] < 255


def test_a_wider_fringe_setting_keys_motion_blur():
    import cv2

    from matte_fixtures import SCREEN, figure_coverage, subject_colours, to_encoded, to_linear

    truth = figure_coverage(160, 160)
    blur = np.full((1, 13), 1 / 13, np.float32)   # the figure moving sideways during the exposure (linear light)
    alpha = cv2.filter2D(truth, -1, blur)
    colour = cv2.filter2D(to_linear(subject_colours(160, 160)) * truth[..., None], -1, blur)
    frame = to_encoded(colour + (1 - alpha[..., None]) * to_linear(SCREEN))
    frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    scores = {r: soft_iou(key(frame, edge_radius=r)[1], alpha) for r in (2, 8)}
    assert scores[8] >= 0.92 and scores[8] > scores[2] + 0.05
    assert soft_iou(key(frame, edges="ramp")[1], alpha) < scores[8]


@pytest.mark.parametrize("grey", [40, 80])
def test_a_dark_figures_antialiased_outline_gets_its_partial_alpha(grey):
    """A dark subject covering part of an outline pixel only darkens the screen there (the hue stays the
    screen's): the pixel must still get its share of alpha, not be keyed as screen."""
    from matte_fixtures import figure_coverage, mix

    truth = figure_coverage(128, 128)
    dark = np.full((128, 128, 3), grey, np.float32)
    frame = np.clip(np.round(mix(truth, dark, np.broadcast_to(SCREEN, dark.shape))), 0, 255).astype(np.uint8)
    _, alpha = key(frame)
    thin = (truth > 0.05) & (truth < 0.5)                    # outline pixels the figure covers only partly
    assert thin.sum() > 100
    assert np.abs(alpha - truth)[thin].mean() < 0.03
    assert soft_iou(alpha, truth) >= 0.99


@pytest.mark.parametrize("colour", [(150, 200, 40), (120, 190, 30)])
def test_a_yellow_green_figure_keeps_its_body(colour):
    """A figure dressed near the screen's colour: green leads its other channels almost as much as the screen's
    does, but red and blue stand to each other the other way round (the screen's tint): it is subject."""
    from matte_fixtures import figure_coverage, mix

    truth = figure_coverage(128, 128)
    shade = 0.8 + 0.2 * np.cos(np.linspace(0, np.pi, 128))[None, :, None]
    dressed = np.broadcast_to(np.float32(colour) * shade, (128, 128, 3))
    frame = np.clip(np.round(mix(truth, dressed, np.broadcast_to(SCREEN, dressed.shape))), 0, 255).astype(np.uint8)
    _, alpha = key(frame)
    assert alpha[truth == 1].mean() > 0.99
    assert soft_iou(alpha, truth) >= 0.98


def test_a_shaded_side_lit_by_the_screens_bounce_is_solid():
    """In shade, a pale costume is lit by the screen's green bounce: pixel by pixel it looks like a mix with the
    screen. No screen reaches it, so it is solid (and it is not, with the interior fill off)."""
    from matte_fixtures import bounce_lit_frame

    frame, truth = bounce_lit_frame(128, 128)
    shaded = (truth == 1) & (np.arange(128) > 68)[None, :]
    filled = key(frame)[1]
    assert filled[shaded].mean() > 0.95
    assert soft_iou(filled, truth) >= 0.96
    assert key(frame, fill_interior=False)[1][shaded].mean() < 0.85


def test_a_dark_island_inside_the_figure_is_subject_and_a_hole_stays_screen():
    from matte_fixtures import islands_frame

    frame, truth, island, hole = islands_frame(128, 128)
    _, alpha = key(frame)
    assert alpha[island].mean() > 0.99              # screen-hued but dark, and no screen reaches it: subject
    assert alpha[hole].max() < 0.02                 # enclosed by the arm but as bright as the screen: screen
    assert soft_iou(alpha, truth) >= 0.99
    assert key(frame, fill_interior=False)[1][island].mean() < 0.1


def test_dense_strands_next_to_skin_are_not_keyed_too_opaque():
    """Where strands crowd into a blob, the blob keys solid and is itself a mix: solved against it, the strands
    next to it would come out nearly opaque. Next to skin (no lead of its own), the screen's lead lost bounds them."""
    from matte_fixtures import hair_fan_frame

    frame, truth, strands = hair_fan_frame(128, 128)
    _, alpha = key(frame)
    error = (alpha - truth)[strands]
    assert strands.sum() > 800
    assert np.abs(error).mean() < 0.046 and error.mean() < 0.045
    assert soft_iou(alpha, truth) >= 0.985


def test_the_fringe_width_is_measured_from_the_shot():
    """edge_radius 0 (the default): a sharp outline gets the one-pixel fringe, motion blur a fringe as wide as it."""
    from matte_fixtures import motion_blurred_frame

    from backend.pipelines.key_fringe_width import fringe_radius
    from backend.pipelines.screen_model import estimate_screen, linear_light

    sharp = linear_light(green_screen_frame(128, 128, noise=2.0)[0])
    assert fringe_radius([sharp], estimate_screen([sharp], 1), 0.12) == 1
    frame, truth = motion_blurred_frame(blur=13)
    blurred = linear_light(frame)
    assert fringe_radius([blurred], estimate_screen([blurred], 1), 0.12) >= 5
    measured = soft_iou(key(frame)[1], truth)
    assert measured >= 0.95 and measured > soft_iou(key(frame, edge_radius=1)[1], truth) + 0.1
