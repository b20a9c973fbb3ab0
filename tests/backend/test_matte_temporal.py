"""Temporal smoothing of the matte: less flicker on a static shot, no ghost on a moving one, small memory."""

import numpy as np
from matte_fixtures import green_screen_frame, soft_iou
from run_stage_fixtures import make_context, run_stage

from backend.stages.frame_window import FrameWindow
from backend.stages.matte import SCREEN_SAMPLES, screen_samples

FRAMES = range(1, 9)


def noisy_static_shot():
    return {f: {"color": green_screen_frame(96, 96, noise=6.0, seed=f)[0]} for f in FRAMES}


def flicker(out, truth) -> float:
    """Mean temporal standard deviation of alpha over the subject's edge."""
    edge = (truth > 0.02) & (truth < 0.98)
    stack = np.stack([out[f]["alpha"] for f in sorted(out)])
    return float(stack.std(axis=0)[edge].mean())


def test_temporal_smoothing_reduces_flicker_on_a_noisy_static_shot(tmp_path):
    shot, truth = noisy_static_shot(), green_screen_frame(96, 96)[1]
    raw = run_stage("matte", {}, make_context(shot, tmp_path / "a"))
    smooth = run_stage("matte", {"refine": {"temporal_radius": 2}}, make_context(shot, tmp_path / "b"))
    assert flicker(smooth, truth) < 0.6 * flicker(raw, truth)
    for f in FRAMES:   # and the matte stays right while it steadies
        assert soft_iou(smooth[f]["alpha"], truth) >= 0.97


def test_a_moving_subject_leaves_no_ghost(tmp_path):
    shot = {f: {"color": green_screen_frame(96, 96, shift=4 * f - 16)[0]} for f in FRAMES}
    guided = run_stage("matte", {"refine": {"temporal_radius": 2}}, make_context(shot, tmp_path / "a"))
    plain = run_stage("matte", {"refine": {"temporal_radius": 2, "temporal_tolerance": 1.0}},
                      make_context(shot, tmp_path / "b"))   # tolerance 1: a plain average over time
    for f in (3, 4, 5, 6):
        truth = green_screen_frame(96, 96, shift=4 * f - 16)[1]
        assert soft_iou(guided[f]["alpha"], truth) >= 0.97
        assert soft_iou(plain[f]["alpha"], truth) < soft_iou(guided[f]["alpha"], truth) - 0.1


def test_stage_reads_each_frame_once_and_a_restart_matches(tmp_path):
    shot = noisy_static_shot()
    params = {"refine": {"temporal_radius": 2}}
    ctx = make_context(shot, tmp_path / "a")
    full = run_stage("matte", params, ctx)
    samples = screen_samples(list(FRAMES))                    # the keyer's screen model is made once per shot first
    assert 0 < len(samples) <= SCREEN_SAMPLES
    assert ctx.reads == samples + list(FRAMES)
    restart = make_context(shot, tmp_path / "b", todo=[5, 6])
    again = run_stage("matte", params, restart)
    assert restart.reads[:len(samples)] == samples
    assert sorted(restart.reads[len(samples):]) == [3, 4, 5, 6, 7, 8]   # only the neighbours the window needs
    for f in (5, 6):
        np.testing.assert_array_equal(again[f]["alpha"], full[f]["alpha"])


def test_window_holds_at_most_two_radii_plus_one_frames():
    computed = []
    window = FrameWindow(list(range(100)), 3, lambda f: computed.append(f) or f)
    for f in range(100):
        value, neighbours = window.around(f)
        assert value == f and len(window.held) <= 7
        assert sorted(neighbours) == [g for g in range(f - 3, f + 4) if 0 <= g < 100 and g != f]
    assert computed == list(range(100))
