"""Video matting (method=video) through the real SAM 2 video and ViTMatte classes, on tiny random-weight models.

Random weights track nothing in particular, so these tests check what does not depend on training: the
models load from the model config, every frame gets an alpha of the frame's size within [0, 1], the
trimap's sure regions are kept, a resumed job gives the uninterrupted run's mattes, the tracker's memory
stays bounded, and missing weights or a missing prompt say what to do.
"""

import numpy as np
import pytest
from matte_fixtures import green_screen_frame
from run_stage_fixtures import make_context, run_stage
from video_matte_fixtures import save_tiny_matting, save_tiny_tracker

from backend.errors import ModelMissing
from backend.params import ParamError, parse_params
from backend.pipelines.video_matte import KEEP_FRAMES, Tracker, VideoMatteParams, trimap
from backend.stages.matte import MatteParams

BOX = {"video": {"box": [30, 20, 100, 120]}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_models")
    return {"tracker": str(save_tiny_tracker(root / "tracker")), "matting": str(save_tiny_matting(root / "matting"))}


def shot(n=4):
    return {f: {"color": green_screen_frame(96, 128, shift=2 * f, noise=2.0, seed=f)[0]} for f in range(1, n + 1)}


def test_every_frame_gets_a_soft_alpha_and_the_trimap_is_respected(models, tmp_path):
    out = run_stage("matte", {"method": "video", **BOX}, make_context(shot(), tmp_path, models=models))
    for arrays in out.values():
        alpha = arrays["alpha"]
        assert alpha.shape == (96, 128) and alpha.dtype == np.float32
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0
        assert arrays["color"].shape == (96, 128, 3)


def test_trimap_bands_the_outline():
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 20:44] = 1.0
    tri = trimap(mask, band=3)
    assert tri[32, 32] == 255 and tri[2, 2] == 0
    assert tri[16, 32] == 128 and tri[32, 44] == 128      # the outline itself is unknown
    assert set(np.unique(tri)) == {0, 128, 255}


def test_a_resumed_job_gives_the_uninterrupted_runs_mattes(models, tmp_path):
    frames = shot(5)
    params = {"method": "video", "video": {"point": [64, 50], "refine": "none"}}
    full = run_stage("matte", params, make_context(frames, tmp_path / "a", models=models))
    ctx = make_context(frames, tmp_path / "b", models=models, todo=[4, 5])
    again = run_stage("matte", params, ctx)
    assert sorted(ctx.reads) == [1, 2, 3, 4, 5]           # the earlier frames are tracked again, once
    for f in (4, 5):
        np.testing.assert_allclose(again[f]["alpha"], full[f]["alpha"], atol=1e-5)


def test_the_trackers_memory_stays_bounded(models):
    from backend.loaders.video_matte import load_tracker

    model, processor = load_tracker(models["tracker"])
    tracker = Tracker(model, processor, parse_params(VideoMatteParams, {"box": [10, 10, 60, 60]}))
    frame = green_screen_frame(64, 64)[0]
    for _ in range(KEEP_FRAMES + 6):
        tracker.mask(frame)
    kept = [f for f, v in tracker.session.processed_frames.items() if v is not None]
    assert len(kept) <= KEEP_FRAMES + 1
    assert len(tracker.session.output_dict_per_obj[0]["non_cond_frame_outputs"]) <= KEEP_FRAMES + 1


def test_missing_weights_name_the_role_and_the_fix(tmp_path):
    models = {"tracker": str(tmp_path / "nowhere"), "matting": str(tmp_path / "nowhere_either")}
    with pytest.raises(ModelMissing, match="tracker.*To fix"):
        run_stage("matte", {"method": "video", **BOX}, make_context(shot(1), tmp_path, models=models))


def test_video_matting_needs_a_prompt():
    with pytest.raises(ParamError, match="video.box=x0,y0,x1,y1"):
        parse_params(MatteParams, {"method": "video"})
