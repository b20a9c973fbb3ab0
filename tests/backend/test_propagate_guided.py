"""Guided propagation: each keyframe's colour model applied to the frame's own pixels, the residual chosen."""

import cv2
import numpy as np
import pytest
import torch

from backend.pipelines.colour_model import apply, coefficients_by_colour, key_model, unit
from backend.pipelines.metrics import laplacian_variance, psnr
from backend.pipelines.preview import preview_grade
from backend.pipelines.propagate import Keyframe, PropagateParams, Propagator
from tests.backend.temporal_fixtures import Shot, region_psnr

torch.set_num_threads(1)

GAP = 12


def run(shot: Shot, blend: str, style) -> list[np.ndarray]:
    prev = Keyframe(0, shot.frame(0), {"color": style(shot, 0, 0)})
    nxt = Keyframe(GAP, shot.frame(GAP), {"color": style(shot, GAP, 1)})
    propagator = Propagator(PropagateParams(blend=blend))
    propagator.prepare_gap(prev, nxt, (shot.frame(t) for t in range(1, GAP)))
    return [propagator.frame(t, shot.frame(t), prev, nxt)["color"] for t in range(GAP + 1)]


def graded(shot, t, side):
    return preview_grade(shot.frame(t))


def inked(shot, t, side, offset=0.0):
    """The grade plus a black ink ring round the disc; the second keyframe's artist drew it `offset` px off."""
    out = preview_grade(shot.frame(t)).copy()
    cx, cy = shot.disc_start + shot.disc_speed * t + offset * side, shot.size[1] / 2
    cv2.circle(out, (round(cx * 4), round(cy * 4)), shot.disc_radius * 4, (0, 0, 0), 8, cv2.LINE_AA, 2)
    return out


def crossing():
    return Shot(size=(256, 128), count=GAP + 1, pan=(0.5, 0.0), disc_speed=3.0, disc_radius=20, disc_start=40)


def test_the_colour_model_reproduces_its_own_keyframe_and_a_pixelwise_style_elsewhere():
    shot = Shot(size=(160, 120), count=GAP + 1, pan=(2.5, 0.8), roll=0.3)
    source, styled = shot.frame(0), preview_grade(shot.frame(0))
    model = key_model(source, styled)
    rebuilt = np.round(np.clip(apply(model.coeffs, unit(source)) + model.residual, 0, 1) * 255).astype(np.uint8)
    assert np.abs(rebuilt.astype(int) - styled).max() <= 1
    # The global fit alone already maps another frame close to its truth: the fallback is a real style.
    later = np.round(np.clip(apply(model.glob, unit(shot.frame(9))), 0, 1) * 255).astype(np.uint8)
    assert psnr(later, preview_grade(shot.frame(9))) > 30.0


@pytest.mark.parametrize("shot", [Shot(size=(160, 120), count=GAP + 1, pan=(2.5, 0.8), roll=0.3), crossing()],
                         ids=["pan-and-roll", "crossing-disc"])
def test_a_pixelwise_style_comes_back_almost_exactly_on_a_moving_scene(shot):
    ours, warped = run(shot, "guided", graded), run(shot, "confidence", graded)
    ideal = [preview_grade(shot.frame(t)) for t in range(GAP + 1)]
    ours_db = [psnr(ours[t], ideal[t]) for t in range(1, GAP)]
    warped_db = [psnr(warped[t], ideal[t]) for t in range(1, GAP)]
    # uint8 rounding alone allows about 59 dB; warping the stylized colour (the older blend) gets 39-44 here.
    assert min(ours_db) > 45.0
    assert np.mean(ours_db) > np.mean(warped_db) + 5.0
    mid = GAP // 2
    assert laplacian_variance(ours[mid]) / laplacian_variance(ideal[mid]) > 0.97  # full sharpness mid-gap


def test_no_doubled_ink_where_the_two_keyframes_disagree():
    # The second keyframe's ring is drawn 5 px off: averaging draws two grey rings, choosing one black one.
    shot = crossing()

    def style(shot, t, side):
        return inked(shot, t, side, offset=5.0)

    errors = {}
    for blend in ("guided", "confidence"):
        out = run(shot, blend, style)
        per_frame = []
        for t in (4, 6, 8):
            a, b = inked(shot, t, 0).astype(np.float32), inked(shot, t, 1, offset=5.0).astype(np.float32)
            band = np.abs(a - b).max(axis=2) > 30  # where the two drawings differ
            frame = out[t].astype(np.float32)
            # Each pixel is judged against the nearer of the two drawings: a choice matches one of them.
            per_frame.append(np.minimum(np.abs(frame - a).max(axis=2), np.abs(frame - b).max(axis=2))[band].mean())
        errors[blend] = float(np.mean(per_frame))
    assert errors["guided"] < 0.8 * errors["confidence"], errors


def thin_ink(shot, t, side):
    """The grade plus a thin (2 px, unsmoothed) black ink ring round the disc, as a toon style draws it."""
    out = preview_grade(shot.frame(t)).copy()
    cx, cy = shot.disc_start + shot.disc_speed * t, shot.size[1] / 2
    cv2.circle(out, (round(cx * 4), round(cy * 4)), shot.disc_radius * 4, (0, 0, 0), 2, cv2.LINE_8, 2)
    return out


def test_thin_ink_stays_sharp_mid_gap():
    # The disc moves a fraction of a pixel off the grid each frame: resampling the ink (as the residual is)
    # turns a 2 px line into a grey smear (round the ring, 0.58-0.80 of the truth's Laplacian variance, 0.72 on
    # average); the ink is carried as it is, nearest-sampled, so it stays a hard line.
    shot = Shot(size=(192, 96), count=GAP + 1, pan=(0.35, 0.0), disc_speed=2.3, disc_radius=24, disc_start=40)
    ours = run(shot, "guided", thin_ink)
    kept = []
    for t in range(3, 10):
        truth = thin_ink(shot, t, 0)
        ring = cv2.dilate((truth.max(axis=2) == 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0

        def detail(image):
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            return cv2.Laplacian(grey, cv2.CV_32F)[ring].var()

        kept.append(detail(ours[t]) / detail(truth))
    assert np.mean(kept) > 0.85, kept


def false_colour(frame: np.ndarray) -> np.ndarray:
    """A pixel-wise style no single affine map of colour reproduces: luminance through a rainbow map."""
    return cv2.applyColorMap(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLORMAP_JET)[..., ::-1].copy()


def test_the_by_colour_model_knows_what_the_style_does_to_each_colour():
    shot = Shot(size=(160, 120), count=GAP + 1, pan=(2.5, 0.8), roll=0.3)
    model = key_model(shot.frame(0), false_colour(shot.frame(0)))
    later = shot.frame(9)
    by_colour = apply(coefficients_by_colour(model.by_colour, later), unit(later))
    ideal = false_colour(later)
    assert psnr(np.round(np.clip(by_colour, 0, 1) * 255).astype(np.uint8), ideal) > 28.0
    # The global fit (one affine map) cannot: the style is not affine in colour.
    assert psnr(np.round(np.clip(apply(model.glob, unit(later)), 0, 1) * 255).astype(np.uint8), ideal) < 20.0


def test_what_no_flow_carries_takes_its_colour_from_the_by_colour_model():
    # A disc too fast for the flow (9 px a frame, from one side of the frame to the other in the gap): mid-gap
    # no keyframe's flow carries its model to it, and the false-colour style still comes back on it.
    shot = Shot(size=(192, 96), count=GAP + 1, pan=(0.5, 0.0), disc_speed=9.0, disc_radius=16, disc_start=30)
    ours = run(shot, "guided", lambda shot, t, side: false_colour(shot.frame(t)))
    warped = run(shot, "confidence", lambda shot, t, side: false_colour(shot.frame(t)))
    for t in (5, 6, 7):
        disc = shot.disc(t)[1] > 0.99
        ideal = false_colour(shot.frame(t))
        # Warps of the keyframes put the background's colours on the disc here (about 4 dB); the colour's
        # model gets 24-25 dB, the global fit alone would get about 6.
        assert region_psnr(ours[t], ideal, disc) > 20.0, t
        assert region_psnr(ours[t], ideal, disc) > region_psnr(warped[t], ideal, disc) + 10.0, t


def test_a_pixelwise_style_comes_back_where_a_disc_outruns_the_flow():
    # A disc 8 px a frame over a checkerboard: no flow follows it, and the by-colour model takes over. A pixel-wise
    # style is a function of colour, so that model reproduces the keyframes' own pixels almost exactly, and is
    # trusted as far as it does (FALLBACK_WEIGHT up to 0.5): round the disc 42.0 dB on average mid-gap (at one
    # weight of 0.1 for every style: 39.8).
    from tests.backend.test_ink_pairs import checker

    shot = Shot(size=(192, 128), count=GAP + 1, pan=(1.5, 0.5), disc_speed=8.0, disc_radius=20, disc_start=26,
                background=checker())
    out = run(shot, "guided", graded)
    around = []
    for t in range(2, GAP - 1):
        disc = cv2.dilate((shot.layers(t)["alpha"] > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        around.append(region_psnr(out[t], graded(shot, t, 0), disc))
    assert np.mean(around) > 41.0, around
