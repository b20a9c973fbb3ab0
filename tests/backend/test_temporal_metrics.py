"""The temporal metrics measure what they claim: flicker, lost detail, distance from the ideal."""

import cv2
import numpy as np
import pytest
import torch

from backend.pipelines.metrics import metrics_report
from backend.pipelines.preview import preview_grade
from tests.backend.temporal_fixtures import Shot

torch.set_num_threads(1)

KEYS = [0, 6, 12]


@pytest.fixture(scope="module")
def shot():
    return Shot(size=(160, 120), count=13, pan=(2.0, 0.7))


def frames(shot, f=lambda i, image: image):
    return (f(i, shot.frame(i)) for i in range(shot.count))


def test_the_source_against_itself(shot):
    report = metrics_report(frames(shot), frames(shot), KEYS)
    assert report["frames"] == 13
    assert report["warp_ratio"] == pytest.approx(1.0)
    assert 0.0 <= report["warp_error_mean"] < 0.01
    assert report["sharpness_kept"] == pytest.approx(1.0)
    assert "psnr" not in report


def test_flicker_raises_the_warp_error_and_one_bad_frame_the_worst_step(shot):
    rng = np.random.default_rng(0)

    def flicker(i, image):  # the "stroboscope": each frame's grade differs a little
        return np.clip(image.astype(np.float32) * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)

    report = metrics_report(frames(shot), frames(shot, flicker), KEYS)
    assert report["warp_ratio"] > 3.0

    def one_jump(i, image):
        return np.clip(image.astype(np.int16) + (40 if i == 7 else 0), 0, 255).astype(np.uint8)

    jump = metrics_report(frames(shot), frames(shot, one_jump), KEYS)
    assert jump["worst_step_over_median"] > 5.0
    assert jump["warp_error_worst_step"] in (6, 7)  # the steps into and out of frame 7


def test_blur_mid_gap_lowers_sharpness_kept(shot):
    def soften(i, image):
        return image if i in KEYS else cv2.GaussianBlur(image, (0, 0), 1.5)

    report = metrics_report(frames(shot), frames(shot, soften), KEYS)
    assert report["sharpness_kept"] < 0.5


def test_warp_error_alone_rewards_blur(shot):
    # why sharpness is reported beside it: blurring everything scores better than the source itself
    blurred = metrics_report(frames(shot), frames(shot, lambda i, im: cv2.GaussianBlur(im, (0, 0), 2.0)), KEYS)
    assert blurred["warp_ratio"] < 0.8


def test_fidelity_against_a_pixelwise_style(shot):
    styled = metrics_report(frames(shot), frames(shot, lambda i, im: preview_grade(im)), KEYS, stylize=preview_grade)
    assert styled["psnr"] > 60
    off = metrics_report(frames(shot), frames(shot), KEYS, stylize=preview_grade)
    assert off["psnr"] < 30


def test_size_mismatch_is_named(shot):
    with pytest.raises(ValueError, match="differ in size"):
        metrics_report(frames(shot), (np.zeros((10, 10, 3), np.uint8) for _ in range(3)), KEYS)
