"""Propagation from keyframes on synthetic footage whose every frame is known."""

import numpy as np
import pytest
import torch

from backend.pipelines.flow import DisFlow, fb_confidence, sample_map, to_grey, upscale_flow
from backend.pipelines.metrics import laplacian_variance, psnr
from backend.pipelines.preview import preview_grade
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from backend.pipelines.stability import mix_stability
from tests.backend.temporal_fixtures import Shot, region_psnr

torch.set_num_threads(1)

GAP = 12


def propagate(shot: Shot, blend: str, keys=(0, GAP), layers=("color",)):
    """Frames 0..GAP rebuilt from keyframes stylized by the pixel-wise preview grade."""
    def key(k):
        truth = shot.layers(k)
        stylized = {"color": preview_grade(truth["color"])}
        stylized.update({name: truth[name] for name in layers if name != "color"})
        return Keyframe(k, truth["color"], stylized)

    prev, nxt = key(keys[0]), key(keys[1])
    propagator = Propagator(PropagateParams(blend=blend))
    propagator.prepare_gap(prev, nxt, (shot.frame(t) for t in range(keys[0] + 1, keys[1])))
    return [propagator.frame(t, shot.frame(t), prev, nxt) for t in range(keys[0], keys[1] + 1)]


def crossing():
    return Shot(size=(256, 128), count=GAP + 1, pan=(0.5, 0.0), disc_speed=3.0, disc_radius=20, disc_start=40)


@pytest.fixture(scope="module")
def panning():
    # A photograph panned 2.5 px and rolled 0.3 degrees per frame: 30 px and 3.6 degrees between keys.
    return Shot(size=(160, 120), count=GAP + 1, pan=(2.5, 0.8), roll=0.3)


def test_keyframes_come_back_exactly(panning):
    out = propagate(panning, "confidence")
    assert np.array_equal(out[0]["color"], preview_grade(panning.frame(0)))
    assert np.array_equal(out[GAP]["color"], preview_grade(panning.frame(GAP)))


def test_propagation_beats_a_crossfade_on_fidelity_and_keeps_sharpness(panning):
    ours = propagate(panning, "confidence")
    fade = propagate(panning, "crossfade")
    inner = range(1, GAP)
    ideal = [preview_grade(panning.frame(t)) for t in range(GAP + 1)]
    ours_psnr = np.mean([psnr(ours[t]["color"], ideal[t]) for t in inner])
    fade_psnr = np.mean([psnr(fade[t]["color"], ideal[t]) for t in inner])
    assert ours_psnr > 30.0
    assert ours_psnr > fade_psnr + 8.0
    mid = GAP // 2

    def kept(frames):
        ratio = laplacian_variance(frames[mid]["color"]) / np.mean(
            [laplacian_variance(frames[0]["color"]), laplacian_variance(frames[GAP]["color"])])
        source = laplacian_variance(ideal[mid]) / np.mean([laplacian_variance(ideal[0]), laplacian_variance(ideal[GAP])])
        return ratio / source

    assert kept(ours) > 0.85
    assert kept(fade) < 0.7  # the dissolve halves the detail mid-gap, as the seed's crossfades did


def test_occlusion_handling_beats_none_on_a_crossing_object():
    # A textured disc (40 px wide) crosses at 3 px per frame over a slowly panning photograph: 36 px
    # between keys, so each keyframe sees background the other one has covered.
    shot = crossing()
    ours = propagate(shot, "confidence")
    naive = propagate(shot, "warp_crossfade")
    gains = []
    for t in range(2, GAP - 1):
        ideal = preview_grade(shot.frame(t))
        # the disc's surroundings at t, where the keyframes disagree about what is in front
        trail = np.zeros(ideal.shape[:2], bool)
        for k in (0, t, GAP):
            trail |= shot.disc(k)[1] > 0.02
        gains.append(region_psnr(ours[t]["color"], ideal, trail) - region_psnr(naive[t]["color"], ideal, trail))
    assert np.mean(gains) > 1.0  # measured about 2 dB
    assert min(gains) > 0.0


def test_alpha_and_depth_ride_along_with_colour():
    shot = crossing()
    out = propagate(shot, "confidence", layers=("color", "alpha", "depth"))
    for t in (3, 6, 9):
        truth = shot.layers(t)
        ours = out[t]
        assert ours["alpha"].dtype == np.float32 and 0.0 <= ours["alpha"].min() and ours["alpha"].max() <= 1.0
        inter = np.logical_and(ours["alpha"] > 0.5, truth["alpha"] > 0.5).sum()
        union = np.logical_or(ours["alpha"] > 0.5, truth["alpha"] > 0.5).sum()
        assert inter / union > 0.85  # the matte follows the disc between the keyframes
        near = truth["alpha"] > 0.9
        assert abs(float(ours["depth"][near].mean()) - 0.3) < 0.05
        assert abs(float(ours["depth"][truth["alpha"] < 0.01].mean()) - 0.8) < 0.05


def test_same_input_same_output_though_the_sides_run_in_two_threads(panning):
    # The two keyframes' flows run concurrently, each side on its own DIS objects: a race between them (a
    # shared estimator, a warm start read while written) would make two runs differ.
    first, second = propagate(panning, "confidence"), propagate(panning, "confidence")
    for a, b in zip(first, second):
        assert np.array_equal(a["color"], b["color"])


def test_the_stability_dial_ends_are_exact(panning):
    propagated = propagate(panning, "confidence")
    for t in (3, 7):
        prop = propagated[t]
        per_frame = {"color": preview_grade(panning.frame(t))}
        assert mix_stability(prop, per_frame, 0.0)["color"] is prop["color"]
        assert np.array_equal(mix_stability(prop, per_frame, 1.0)["color"], per_frame["color"])
        half = mix_stability(prop, per_frame, 0.5)["color"].astype(np.float32)
        expected = 0.5 * prop["color"].astype(np.float32) + 0.5 * per_frame["color"]
        assert np.abs(half - expected).max() <= 0.5 + 1e-3
    with pytest.raises(ValueError, match="outside"):
        mix_stability(prop, per_frame, 1.5)


def test_one_sided_propagation_after_the_last_keyframe(panning):
    prev_truth = panning.frame(0)
    key = Keyframe(0, prev_truth, {"color": preview_grade(prev_truth)})
    out = Propagator().frame(4, panning.frame(4), key, None)["color"]
    assert psnr(out, preview_grade(panning.frame(4))) > 27.0


def test_a_keyframe_of_the_wrong_size_is_named():
    shot = Shot(size=(64, 64), count=2)
    with pytest.raises(ValueError, match="resize the stylized keyframe"):
        Keyframe(0, shot.frame(0), {"color": np.zeros((32, 32, 3), np.uint8)})


def test_the_occlusion_checks_slack_forgives_flow_noise_but_not_occlusion():
    forward = np.full((32, 48, 2), 4.0, np.float32)
    consistent, noisy, occluded = -forward, -forward + 2.0, -forward + 20.0
    low_noise = fb_confidence(forward, noisy)[8:24, 8:24]
    assert fb_confidence(forward, consistent)[8:24, 8:24].min() > 0.99
    assert low_noise.max() < 0.01  # the textbook tolerance calls 2 px of disagreement an occlusion
    assert fb_confidence(forward, noisy, slack=16.0)[8:24, 8:24].min() > 0.5
    assert fb_confidence(forward, occluded, slack=16.0)[8:24, 8:24].max() < 0.01


def test_the_balanced_flow_recovers_a_known_pan(panning):
    # The median that stands in for variational refinement must not bias the flow: the camera pans 2.5, 0.8 px
    # a frame, so each pixel of frame 6 is found 15, 4.8 px further on in frame 0.
    flow = DisFlow("balanced")(panning.frame(6), panning.frame(0))
    middle = flow[30:90, 40:120]
    assert middle.std(axis=(0, 1)).max() < 1.5  # the roll adds a little spread
    assert np.abs(np.median(middle.reshape(-1, 2), axis=0) - (15.0, 4.8)).max() < 0.5


def test_a_prediction_is_refined_at_the_finest_level_only(panning):
    # Frame 6 is 15, 4.8 px from frame 0. Refining a prediction 2 px off at the finest level finds the pan; with
    # no prediction that single level cannot reach 15 px, which is what the coarser levels are for.
    a, b = to_grey(panning.frame(6)), to_grey(panning.frame(0))  # at 160 px DIS works at full size
    truth = np.array([15.0, 4.8], np.float32)
    middle = (slice(30, 90), slice(40, 120))
    guess = np.broadcast_to(truth + 2.0, a.shape + (2,)).astype(np.float32)
    refined = DisFlow("balanced").raw(a, b, guess, close=True)[middle]
    assert np.abs(np.median(refined.reshape(-1, 2), axis=0) - truth).max() < 0.5
    blind = DisFlow("balanced").raw(a, b, np.zeros_like(guess), close=True)[middle]
    assert np.abs(np.median(blind.reshape(-1, 2), axis=0) - truth).max() > 2.0
    full = DisFlow("balanced").raw(a, b, np.zeros_like(guess))[middle]
    assert np.abs(np.median(full.reshape(-1, 2), axis=0) - truth).max() < 0.5


@pytest.mark.parametrize("small, large", [((120, 68), (960, 540)), ((170, 100), (333, 201))])
def test_coordinates_resized_from_a_small_flow_equal_those_of_the_upsampled_flow(small, large):
    flow = np.random.default_rng(3).normal(0, 5, (small[1], small[0], 2)).astype(np.float32)
    direct, resized = sample_map(upscale_flow(flow, large)), sample_map(flow, large)
    for a, b in zip(direct, resized):  # the edge rows and columns, where the resize clamps, included
        assert np.abs(a - b).max() < 1e-3
