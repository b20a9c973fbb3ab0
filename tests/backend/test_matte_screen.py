"""The difference keyer on an unevenly lit screen with the figure's shadow on it; clean plate; shadow layer."""

import cv2
import numpy as np
import pytest
from matte_fixtures import lit_screen, shadowed_screen_frame, soft_iou
from run_stage_fixtures import make_context, run_stage

from backend.params import ParamError, parse_params
from backend.pipelines.chroma_key import ChromaKeyParams, chroma_key
from backend.stages.base import StageError
from backend.stages.matte import MatteParams


def key(frame, **values):
    return chroma_key(frame, parse_params(ChromaKeyParams, values))[1]


def test_a_cast_shadow_and_falloff_on_the_screen_key_as_screen():
    frame, truth, shadow, _ = shadowed_screen_frame(128, 128)
    alpha = key(frame)
    assert soft_iou(alpha, truth) >= 0.98
    off_figure = cv2.dilate((truth > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    assert (shadow[off_figure] > 0.3).sum() > 200                # the shot does have a shadow on the screen
    assert alpha[(shadow > 0.2) & off_figure].max() < 0.05      # and it is not foreground anywhere
    error = np.abs(alpha - truth)
    assert error[(truth == 0) | (truth == 1)].mean() < 0.005     # what error is left is at the outline
    assert soft_iou(key(frame, model="distance"), truth) < 0.7   # the older keyer keys the shadow


def stage_inputs(frames):
    return {i + 1: {"color": f} for i, f in enumerate(frames)}


def test_a_clean_plate_improves_a_badly_lit_screen(tmp_path):
    # a warm lamp on the right turns the screen yellow there: its hue differs across the frame
    frames = [shadowed_screen_frame(128, 128, warm=0.8, seed=s, shift=3 * s) for s in range(3)]
    plate = frames[0][3]
    truth = {i + 1: f[1] for i, f in enumerate(frames)}

    estimated = run_stage("matte", {}, make_context(stage_inputs(f[0] for f in frames), tmp_path / "a"))
    ctx = make_context(stage_inputs(f[0] for f in frames), tmp_path / "b")
    ctx.sides = {"clean_plate": [0]}
    ctx.read_side = lambda name, k: {"color": plate}
    plated = run_stage("matte", {"key": {"clean_plate": True}}, ctx)
    for f in truth:
        with_plate = soft_iou(plated[f]["alpha"], truth[f])
        assert with_plate >= 0.97
        assert with_plate > soft_iou(estimated[f]["alpha"], truth[f]) + 0.03


def test_a_clean_plate_that_is_missing_says_how_to_give_it(tmp_path):
    frame = shadowed_screen_frame(64, 64)[0]
    with pytest.raises(StageError, match="--side clean_plate="):
        run_stage("matte", {"key": {"clean_plate": True}}, make_context({1: {"color": frame}}, tmp_path))


def test_the_shadow_layer_is_where_the_figures_shadow_is(tmp_path):
    frames = [shadowed_screen_frame(128, 128, seed=s, shift=4 * s) for s in range(3)]
    out = run_stage("matte", {"shadow": True}, make_context(stage_inputs(f[0] for f in frames), tmp_path))
    for i, (_, truth_alpha, truth_shadow, _) in enumerate(frames):
        layer = out[i + 1]["shadow"]
        assert layer.shape == truth_alpha.shape and layer.dtype == np.float32
        inside, outside = truth_shadow > 0.3, truth_shadow < 0.01
        assert abs(layer[inside].mean() - truth_shadow[inside].mean()) < 0.08
        assert layer[outside].mean() < 0.04                    # the screen's falloff is not taken for shadow
        assert np.abs(layer - truth_shadow).mean() < 0.04
        centre = np.unravel_index(np.argmax(layer), layer.shape)
        assert truth_shadow[centre] > 0.3                     # its darkest point is in the true shadow


def test_the_shadow_layer_has_no_halo_around_the_figure(tmp_path):
    """The figure's own darkness at its outline is not a shadow: no dark ring for the card to lay on the floor."""
    frames = [shadowed_screen_frame(128, 128, seed=s, shift=4 * s) for s in range(3)]
    out = run_stage("matte", {"shadow": True}, make_context(stage_inputs(f[0] for f in frames), tmp_path))
    for i, (_, truth_alpha, truth_shadow, _) in enumerate(frames):
        layer = out[i + 1]["shadow"]
        around = cv2.dilate((truth_alpha > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        ring = around & (truth_alpha == 0) & (truth_shadow < 0.01)   # clear screen within 3 px of the figure
        outline = (truth_alpha > 0) & (truth_alpha < 1) & (truth_shadow < 0.01)
        assert layer[ring].max() < 0.15 and layer[outline].mean() < 0.03  # blurring the figure in: 0.35, 0.135


def test_the_shadow_layer_needs_the_difference_keyer():
    with pytest.raises(ParamError, match="shadow"):
        parse_params(MatteParams, {"shadow": True, "key": {"model": "distance"}})


def test_a_blown_out_patch_of_screen_keys_as_screen():
    from matte_fixtures import figure_coverage, mix, subject_colours, to_encoded, to_linear

    h, w = 128, 128
    y, x = np.mgrid[:h, :w] / h
    hot = 1.0 + 12.0 * np.exp(-(((x - 0.2) ** 2 + (y - 0.85) ** 2) / 0.004))   # a lamp burning into the floor
    screen = to_encoded(np.clip(to_linear(lit_screen(h, w, falloff=0.0)) * hot[..., None], 0.0, 1.0))
    truth = figure_coverage(h, w)
    frame = np.clip(np.round(mix(truth, subject_colours(h, w), screen)), 0, 255).astype(np.uint8)
    assert (frame[..., 1] == 255).mean() > 0.02                 # the screen's channel clips over a patch
    alpha = key(frame)
    assert soft_iou(alpha, truth) >= 0.97
    assert alpha[(hot > 3) & (truth == 0)].mean() < 0.05


def test_the_fast_paths_compute_what_the_plain_formulas_do():
    """linear_light's table lookup and the clipped-screen blurs cropped to the hot pixels match the plain
    whole-frame computation exactly (a crop that cut the blur's reach short would differ near the patch)."""
    from backend.pipelines.key_difference import HOT_SIGMA, _clipped_screen_lead
    from backend.pipelines.screen_model import ScreenModel, linear_light
    from backend.pipelines.srgb import srgb_to_linear

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    assert np.array_equal(linear_light(frame), srgb_to_linear(frame.astype(np.float32) / 255.0))
    lead = rng.uniform(0.0, 0.8, (96, 160)).astype(np.float32)
    hot = np.zeros((96, 160), bool)
    hot[40:52, 140:150] = rng.uniform(size=(12, 10)) > 0.3       # a patch near the right edge
    screen = ScreenModel(1, np.full((96, 160), 0.6, np.float32), np.ones((96, 160), np.float32))
    h = hot.astype(np.float32)
    weight = cv2.GaussianBlur(h, (0, 0), HOT_SIGMA, borderType=cv2.BORDER_REPLICATE)
    local = cv2.GaussianBlur(lead * h, (0, 0), HOT_SIGMA, borderType=cv2.BORDER_REPLICATE) / np.maximum(weight, 1e-6)
    plain = np.where(weight > 0.2, np.minimum(screen.lead, local), screen.lead)
    fast = _clipped_screen_lead(lead, hot, screen)
    assert (fast < screen.lead).sum() > 50                        # the patch does lower the screen's lead
    assert np.array_equal(fast, plain)


def test_edges_next_to_clipped_highlights_are_not_keyed_opaque():
    """Two stops over: the screen's green and the lit subject's red clip. Where a mix keeps one unclipped channel,
    alpha is solved on it (the subject at the colour next to it), not taken as solid."""
    from matte_fixtures import figure_coverage, subject_colours, to_encoded, to_linear

    h, w = 128, 128
    truth = figure_coverage(h, w)
    linear = truth[..., None] * to_linear(subject_colours(h, w)) + (1 - truth[..., None]) * to_linear(lit_screen(h, w, falloff=0.3))
    frame = np.clip(np.round(to_encoded(np.clip(4.0 * linear, 0.0, 1.0))), 0, 255).astype(np.uint8)
    assert (frame == 255).any(-1).mean() > 0.5                   # most of the frame has a clipped channel
    alpha = key(frame)
    edge = (truth > 0.02) & (truth < 0.98)
    assert np.clip(alpha - truth, 0.0, None)[edge].mean() < 0.03   # the edge is not pushed towards opaque
    assert soft_iou(alpha, truth) >= 0.98


def test_the_screen_models_lit_colour_is_the_plates_colour():
    """Where no screen shows near a fringe pixel (inside dense strands), its colour comes from the screen model:
    its level, lead and tint give back the lit screen's colour, here a warm-lit plate's."""
    from backend.pipelines.screen_model import linear_light, screen_from_plate

    plate = lit_screen(96, 128, falloff=0.4, warm=0.8)
    plate8 = np.clip(np.round(plate), 0, 255).astype(np.uint8)
    model = screen_from_plate(plate8, 1, (96, 128))
    at = (np.array([10, 50, 90, 48]), np.array([5, 64, 120, 100]))
    expected = cv2.GaussianBlur(linear_light(plate8), (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)[at]
    assert np.allclose(model.lit_colour(at), expected, rtol=0.02, atol=1e-3)


def test_the_matte_stage_measures_the_fringe_once_per_shot(tmp_path):
    from matte_fixtures import motion_blurred_frame

    frames = [motion_blurred_frame(blur=13, shift=4 * s) for s in range(3)]
    out = run_stage("matte", {}, make_context(stage_inputs(f[0] for f in frames), tmp_path / "a"))
    narrow = run_stage("matte", {"key": {"edge_radius": 1}}, make_context(stage_inputs(f[0] for f in frames), tmp_path / "b"))
    for i, (_, truth) in enumerate(frames):
        assert soft_iou(out[i + 1]["alpha"], truth) >= 0.95
        assert soft_iou(out[i + 1]["alpha"], truth) > soft_iou(narrow[i + 1]["alpha"], truth) + 0.1
