"""Scene cuts: found by histogram or by what no flow explains; never blended across; a late keyframe is named."""

import logging

import cv2
import numpy as np
import torch
from skimage import data

from backend.params import parse_params
from backend.pipelines.keyframes import KeyframeParams, plan_keyframes
from backend.pipelines.metrics import psnr
from backend.pipelines.preview import preview_grade
from backend.stages.base import get_stage
from tests.backend.temporal_fixtures import Shot, context

torch.set_num_threads(1)


def frames(shot):
    return ((i, shot.frame(i)) for i in range(shot.count))


def test_a_cut_to_another_angle_of_the_same_picture_is_found_by_its_residual():
    # Two pans over one gravel texture: the histogram barely changes at the cut, but no flow carries one onto
    # the other.
    big = cv2.resize(np.dstack([data.gravel()] * 3), (768, 768), interpolation=cv2.INTER_AREA)
    views = [big[100 + 2 * i:244 + 2 * i, 60 + 4 * i:316 + 4 * i] for i in range(8)]
    views += [big[420 + 2 * i:564 + 2 * i, 400 + 4 * i:656 + 4 * i] for i in range(8)]
    shot = list(enumerate(views))
    assert plan_keyframes(iter(shot), KeyframeParams(cut_residual=0.0)).segments == [(0, 15)]  # histogram alone
    plan = plan_keyframes(iter(shot), KeyframeParams())
    assert plan.segments == [(0, 7), (8, 15)]
    assert {7, 8} <= set(plan.keys)


def test_the_warning_names_the_frames_and_the_keyframe_to_add():
    shot = Shot(count=30, pan=(1, 0), cut_at=17)
    plan = plan_keyframes(frames(shot), KeyframeParams(keyframes=[3, 20, 29]))
    assert plan.late_scenes() == [(0, 2, 3), (17, 19, 20)]
    shot_start, after_cut = plan.warnings()
    assert "frames 0-2" in shot_start and "add keyframe 0" in shot_start
    assert "cut lands at frame 17" in after_cut and "frames 17-19" in after_cut
    assert "keyframe 20" in after_cut and "add keyframe 17" in after_cut
    automatic = plan_keyframes(frames(shot), KeyframeParams(interval=12))
    assert automatic.late_scenes() == [] and automatic.warnings() == []


def test_a_cut_is_never_blended_across_and_the_stage_warns(tmp_path, caplog):
    # Frames 1..20, a cut at frame 11 (shot index 10); the artist's keyframes 1 and 15 leave 11..14 to be
    # rebuilt backwards from 15 alone. Nothing of the first scene may show after the cut, nor of the second before.
    shot = Shot(size=(128, 96), count=20, pan=(1.5, 0.5), cut_at=10)
    stage = get_stage("propagate")
    with caplog.at_level(logging.WARNING):
        out = dict(stage.run(parse_params(stage.Params, {"keyframes": [1, 15, 20]}), context(shot, tmp_path)))
    assert any("add keyframe 11" in record.getMessage() for record in caplog.records)
    for frame in range(2, 21):
        ours = out[frame]["color"]
        truth = preview_grade(shot.frame(frame - 1))
        other = preview_grade(Shot(size=(128, 96), count=20, pan=(1.5, 0.5),
                                   cut_at=0 if frame <= 10 else 99).frame(frame - 1))  # the other scene's picture
        assert psnr(ours, truth) > 30.0, frame
        # A blend across the cut would pull the frame toward the other scene's picture.
        assert psnr(ours, truth) > psnr(ours, other) + 15.0, frame
