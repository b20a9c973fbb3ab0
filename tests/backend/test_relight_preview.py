"""PREVIEW normals (from depth or silhouette) and albedo (shading divided out), as pipelines and as stages."""

import numpy as np
import pytest

from backend.params import ParamError, parse_params
from backend.pipelines.preview_albedo import PreviewAlbedoParams, preview_albedo
from backend.pipelines.preview_normal import PreviewNormalParams, decode_normals, encode_normals, preview_normals
from backend.stages.base import StageError
from run_stage_fixtures import make_context, run_stage


def disc(size=96, radius=30):
    yy, xx = np.mgrid[:size, :size]
    return (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= radius ** 2).astype(np.float32)


def test_silhouette_normals_face_outward_at_the_edges_and_the_camera_in_the_middle():
    normal = preview_normals(disc(), None, PreviewNormalParams(relief=0.25))
    assert np.allclose(np.linalg.norm(normal, axis=-1), 1.0, atol=1e-4)
    assert normal[48, 48, 2] > 0.95                       # middle: toward the camera
    assert normal[48, 48 - 27, 0] < -0.3                  # left edge turns left
    assert normal[48, 48 + 27, 0] > 0.3                   # right edge turns right
    assert normal[48 - 27, 48, 1] > 0.3                   # top edge turns up (y up)
    assert normal[48 + 27, 48, 1] < -0.3                  # bottom edge turns down
    assert np.all(normal[disc() == 0] == (0.0, 0.0, 1.0))  # outside: nothing to shade, faces the camera


def test_a_surface_receding_to_the_right_faces_right():
    depth = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (64, 1))  # farther to the right
    normal = preview_normals(np.ones((64, 64), np.float32), depth, PreviewNormalParams(relief=0.5, blur=0))
    assert np.all(normal[10:-10, 10:-10, 0] > 0.2) and np.allclose(normal[10:-10, 10:-10, 1], 0, atol=1e-4)


def test_encoding_round_trips_through_8_bits():
    normal = preview_normals(disc(), None, PreviewNormalParams(relief=0.25))
    stored = np.round(encode_normals(normal) * 255).astype(np.uint8)
    assert np.degrees(np.arccos(np.clip((decode_normals(stored) * normal).sum(-1), -1, 1))).max() < 1.5


def test_albedo_flattens_a_lighting_gradient_and_keeps_texture():
    size = 96
    texture = np.where((np.indices((size, size)).sum(0) // 6) % 2 == 0, 0.5, 0.3)  # checkerboard, linear light
    light = np.tile(np.linspace(0.25, 1.0, size), (size, 1))                       # lit from the right
    srgb = lambda v: np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)  # noqa: E731
    colour = np.round(srgb(np.repeat((texture * light)[..., None], 3, -1)) * 255).astype(np.uint8)
    albedo = preview_albedo(colour, np.ones((size, size), np.float32), PreviewAlbedoParams(radius=0.1))
    left, right = albedo[:, 15:30, 0].mean(), albedo[:, 66:81, 0].mean()
    before = colour[:, 15:30, 0].mean() / colour[:, 66:81, 0].mean()
    assert abs(left / right - 1) < 0.5 * abs(before - 1), (left / right, before)   # at least halves the gradient
    assert albedo[40:56, 40:56, 0].std() > 10                                       # the checkerboard survives


def test_albedo_strength_zero_is_the_colour():
    colour = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = preview_albedo(colour, np.ones((32, 32), np.float32), PreviewAlbedoParams(strength=0.0))
    assert np.abs(out.astype(int) - colour).max() <= 1


def test_stages_read_a_matte_take_and_need_its_alpha(tmp_path):
    colour = np.full((48, 48, 3), 120, np.uint8)
    alpha = (disc(48, 16) * 255).astype(np.uint8)  # as a png8 alpha layer decodes
    inputs = {1: {"color": colour, "alpha": alpha}, 2: {"color": colour, "alpha": alpha}}
    normals = run_stage("preview_normal", {}, make_context(inputs, tmp_path / "n"))
    assert normals[1]["normal"].shape == (48, 48, 3)
    assert decode_normals(normals[1]["normal"])[24, 24 - 14, 0] < -0.2  # the silhouette's edge turns
    albedo = run_stage("preview_albedo", {}, make_context(inputs, tmp_path / "a"))
    assert albedo[2]["albedo"].dtype == np.uint8 and albedo[2]["albedo"].shape == (48, 48, 3)
    with pytest.raises(StageError, match="alpha"):
        run_stage("preview_normal", {}, make_context({1: {"color": colour}}, tmp_path / "x"))
    with pytest.raises(ParamError):
        parse_params(PreviewAlbedoParams, {"strength": "2"})
