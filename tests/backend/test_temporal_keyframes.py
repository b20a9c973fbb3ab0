"""Keyframe choice: uniform, adaptive from motion, scene cuts, the artist's own list."""

import numpy as np
import pytest
import torch

from backend.params import ParamError, parse_params
from backend.pipelines.keyframes import KeyframeParams, plan_keyframes
from tests.backend.temporal_fixtures import Shot

torch.set_num_threads(1)


class SlowThenFast(Shot):
    """Pans 0.5 px per frame for 30 frames, then 6 px per frame."""

    def camera(self, i):
        position = 0.5 * min(i, 30) + 6.0 * max(0, i - 30)
        m = np.float32([[1, 0, -(40 + position)], [0, 1, -100]])
        return m


def frames(shot):
    return ((i, shot.frame(i)) for i in range(shot.count))


def test_uniform_spacing_ends_on_the_last_frame():
    plan = plan_keyframes(frames(Shot(count=30, pan=(1, 0))), KeyframeParams(mode="uniform", interval=12))
    assert plan.keys == [0, 12, 24, 29]
    assert plan.segments == [(0, 29)]


def test_adaptive_keyframes_are_denser_where_motion_is_larger():
    shot = SlowThenFast(size=(128, 96), count=60)
    params = KeyframeParams(mode="adaptive", min_interval=2, max_interval=30, motion_threshold=0.08)
    plan = plan_keyframes(frames(shot), params)
    slow = [k for k in plan.keys if 0 < k < 30]
    fast = [k for k in plan.keys if 30 < k < 59]
    assert len(fast) >= 3 * max(1, len(slow))
    gaps = np.diff(plan.keys)
    assert gaps.min() >= 2 and gaps.max() <= 30


def test_a_scene_cut_splits_the_shot_and_is_bracketed_by_keyframes():
    shot = Shot(count=30, pan=(1, 0), cut_at=17)
    plan = plan_keyframes(frames(shot), KeyframeParams(mode="uniform", interval=12))
    assert plan.segments == [(0, 16), (17, 29)]
    assert {16, 17} <= set(plan.keys)
    assert plan.bracket(15) == (12, 16)  # never reaches across the cut
    assert plan.bracket(18) == (17, 29)


def test_no_cut_is_found_in_a_continuous_pan():
    plan = plan_keyframes(frames(Shot(count=30, pan=(3, 1))), KeyframeParams())
    assert len(plan.segments) == 1


def test_the_artists_list_overrides_and_is_checked():
    shot = Shot(count=30, pan=(1, 0), cut_at=17)
    plan = plan_keyframes(frames(shot), KeyframeParams(keyframes=[3, 20]))
    assert plan.keys == [3, 20]
    assert plan.bracket(10) == (3, None)  # one-sided after the last key of its segment
    with pytest.raises(ParamError, match="has no keyframe"):
        plan_keyframes(frames(shot), KeyframeParams(keyframes=[3, 10]))
    with pytest.raises(ParamError, match="outside"):
        plan_keyframes(frames(shot), KeyframeParams(keyframes=[3, 99]))


def test_params_are_validated_with_clear_messages():
    with pytest.raises(ParamError, match="min_interval"):
        parse_params(KeyframeParams, {"min_interval": 10, "max_interval": 5})
    with pytest.raises(ParamError, match="choose one of"):
        parse_params(KeyframeParams, {"mode": "random"})
