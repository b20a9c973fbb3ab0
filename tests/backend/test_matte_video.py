"""Video matting (method=video) through the real SAM 2 video and ViTMatte classes, on tiny random-weight models.

Random weights track nothing in particular, so these tests check what does not depend on training: the
models load from the model config, every frame gets an alpha of the frame's size within [0, 1], the
trimap's sure regions are kept, a resumed job gives the uninterrupted run's mattes, the tracker's memory
stays bounded, without a prompt the person's box comes from rembg on the first frame, and missing weights
or no person found say what to do.
"""

import numpy as np
import pytest
from matte_fixtures import green_screen_frame
from run_stage_fixtures import make_context, run_stage
from video_matte_fixtures import save_tiny_matting, save_tiny_tracker

from backend.errors import ModelMissing
from backend.params import parse_params
from backend.pipelines.video_matte import KEEP_FRAMES, Tracker, VideoMatteParams, trimap

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
    with pytest.raises(ModelMissing, match="tracker.*To fix.*and for 'matting'"):
        run_stage("matte", {"method": "video", **BOX}, make_context(shot(1), tmp_path, models=models))


def test_without_a_prompt_the_person_is_found_on_the_first_frame(models, tmp_path, monkeypatch):
    import warnings

    from matte_fixtures import export_subject_net

    from backend.stages.matte_video import person_box

    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        net = export_subject_net(tmp_path / "rembg" / "models" / "custom" / "subject.onnx")
    frame, truth = green_screen_frame(96, 128)
    from backend.loaders.matte import load_matte_session

    box = person_box(load_matte_session(str(net)), frame)
    ys, xs = np.nonzero(truth > 0.5)
    assert abs(box[0] - xs.min()) <= 4 and abs(box[2] - xs.max() - 1) <= 4     # the box hugs the figure
    assert abs(box[1] - ys.min()) <= 4 and abs(box[3] - ys.max() - 1) <= 4
    out = run_stage("matte", {"method": "video", "video": {"refine": "none"}},
                    make_context(shot(2), tmp_path / "s", models={**models, "matte": str(net)}))
    assert sorted(out) == [1, 2]


def test_no_person_on_the_first_frame_says_how_to_mark_one():
    from backend.stages.base import StageError
    from backend.stages.matte_video import person_box

    class Nothing:   # a rembg session that finds no one: rembg_alpha calls remove(), which calls predict()
        def predict(self, image, *args, **kwargs):
            from PIL import Image
            return [Image.new("L", image.size, 0)]

    with pytest.raises(StageError, match="video.box=x0,y0,x1,y1"):
        person_box(Nothing(), green_screen_frame(64, 64)[0])
