"""The colour model's fast paths give the values of the plain ones: the per-pixel 3x3 solve and the grouped warp."""

import cv2
import numpy as np

from backend.pipelines.colour_model import fit_coefficients, solve_symmetric, unit, warp_coefficients
from backend.pipelines.preview import preview_grade
from tests.backend.temporal_fixtures import Shot


def test_the_adjugate_solve_equals_numpys_on_real_and_nearly_singular_windows():
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(64, 96, 3, 3)).astype(np.float32)
    sigma = spread @ spread.transpose(0, 1, 3, 2)
    sigma[:32] *= np.float32(1e-6)  # nearly flat windows: sigma is almost eps times the identity
    sigma += np.eye(3, dtype=np.float32) * np.float32(1e-4)
    rhs = rng.normal(size=(64, 96, 3, 3)).astype(np.float32)
    solved = solve_symmetric(sigma, rhs)
    assert solved.dtype == np.float32
    exact = np.linalg.solve(sigma.astype(np.float64), rhs.astype(np.float64))
    assert np.abs(exact).max() > 1e4  # the nearly singular windows give large solutions, as they should
    assert np.abs(solved - exact).max() <= 1e-6 * np.abs(exact).max()
    assert np.allclose(solved, np.linalg.solve(sigma, rhs), rtol=1e-6, atol=0)


def test_fitted_coefficients_reproduce_a_pixelwise_style():
    frame = Shot(size=(160, 96), count=1).frame(0)
    coeffs = fit_coefficients(unit(frame), unit(preview_grade(frame)))
    assert coeffs.shape == (12, 96, 160) and np.isfinite(coeffs).all()
    modelled = np.stack([coeffs[4 * c] * unit(frame)[..., 0] + coeffs[4 * c + 1] * unit(frame)[..., 1]
                         + coeffs[4 * c + 2] * unit(frame)[..., 2] + coeffs[4 * c + 3] for c in range(3)], axis=2)
    assert np.abs(modelled - unit(preview_grade(frame))).mean() < 0.02  # within 5 levels on average


def test_coefficients_warped_in_groups_equal_plane_by_plane():
    rng = np.random.default_rng(1)
    xs, ys = np.meshgrid(np.arange(120, dtype=np.float32), np.arange(70, dtype=np.float32))
    coords = (xs + rng.normal(0, 3, xs.shape).astype(np.float32) + 2.4, ys - 1.3)
    for count in (12, 7, 6, 5, 3, 2, 1):  # groups of 4 and 3 channels, a pair and single planes plane by plane
        planes = rng.random((count, 70, 120), dtype=np.float32)
        alone = np.stack([cv2.remap(p, *coords, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for p in planes])
        assert np.array_equal(warp_coefficients(planes, coords), alone), count


def test_two_keyframes_by_colour_sums_fit_the_colours_either_showed():
    """A gap's by-colour model is fitted from both keyframes' pixels together (by_colour_sums pooled, then
    solve_by_colour), not their two fits averaged: a colour only one keyframe showed keeps that keyframe's mapping."""
    from backend.pipelines.colour_model import by_colour_sums, coefficients_by_colour, fit_global, solve_by_colour

    def style(rgb):  # not affine over the whole frame: red turns blue, the rest keeps its colour
        out = rgb.copy()
        red = (rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.3)
        out[red] = (0.1, 0.2, 0.9)
        return out

    rng = np.random.default_rng(1)
    grey = np.clip(0.5 + rng.normal(0, 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    red, green = grey.copy(), grey.copy()
    red[:32] = np.clip((0.8, 0.1, 0.1) + rng.normal(0, 0.03, (32, 64, 3)), 0, 1)    # only the first keyframe shows red
    green[:32] = np.clip((0.1, 0.8, 0.1) + rng.normal(0, 0.03, (32, 64, 3)), 0, 1)  # the second, green
    weight = np.ones((64, 64), np.float32)
    sums = [by_colour_sums(image, style(image), weight) for image in (red, green)]
    globs = [fit_global(image, style(image)) for image in (red, green)]
    pooled = solve_by_colour(0.5 * sums[0] + 0.5 * sums[1], 0.5 * globs[0] + 0.5 * globs[1])
    averaged = 0.5 * solve_by_colour(sums[0], globs[0]) + 0.5 * solve_by_colour(sums[1], globs[1])
    for image in (red, green):
        want = style(image)[:32]
        errors = []
        for table in (pooled, averaged):
            coeffs = coefficients_by_colour(table, image)
            got = np.stack([sum(coeffs[4 * c + i] * image[..., i] for i in range(3)) + coeffs[4 * c + 3]
                            for c in range(3)], -1)[:32]
            errors.append(float(np.abs(got - want).mean()))
        # pooled 0.010 (red) and 0.002 (green) off; averaged 0.27 and 0.05
        assert errors[0] < 0.02, errors  # pooled: each colour as its keyframe styled it
        assert errors[1] > 3 * errors[0], errors  # averaged: half way to the other keyframe's global fit
