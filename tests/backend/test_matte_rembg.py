"""rembg through its own code path: a tiny ONNX net loaded by rembg's custom session, and the clear errors."""

import warnings

import numpy as np
import pytest
from matte_fixtures import export_subject_net, green_screen_frame, soft_iou
from run_stage_fixtures import make_context, run_stage

from backend.loaders.matte import load_matte_session
from backend.loaders.missing import ModelMissing
from backend.pipelines.rembg_matte import rembg_alpha
from backend.stages.base import StageError


@pytest.fixture
def rembg_home(tmp_path, monkeypatch):
    """rembg's model folder, pointed at a temp dir (rembg reads REMBG_HOME when it opens a session)."""
    home = tmp_path / "rembg"
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(home))
    return home


@pytest.fixture
def subject_net(rembg_home):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # torch's TorchScript ONNX exporter is "legacy"
        return export_subject_net(rembg_home / "models" / "custom" / "subject.onnx")


def test_custom_onnx_session_gives_an_alpha_of_the_frame_size(subject_net):
    session = load_matte_session(str(subject_net))
    assert type(session).__name__ == "U2netCustomSession"
    frame, truth = green_screen_frame(96, 128)
    alpha = rembg_alpha(session, frame)
    assert alpha.shape == (96, 128) and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert alpha[truth > 0.99].mean() > alpha[truth < 0.01].mean() + 0.5   # the net finds the subject
    assert soft_iou(alpha, truth) > 0.8


def test_matte_stage_with_rembg_uses_the_configured_model(subject_net, tmp_path):
    frames = {f: {"color": green_screen_frame(64, 64, shift=f)[0]} for f in (1, 2)}
    ctx = make_context(frames, tmp_path / "scratch", models={"matte": str(subject_net)})
    out = run_stage("matte", {"method": "rembg"}, ctx)
    for f, arrays in out.items():
        np.testing.assert_array_equal(arrays["color"], frames[f]["color"])   # straight colour, untouched
        truth = green_screen_frame(64, 64, shift=f)[1]
        assert soft_iou(arrays["alpha"], truth) > 0.8


def test_named_model_found_in_rembgs_folder_runs_offline_through_the_stage(rembg_home, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        export_subject_net(rembg_home / "models" / "u2net_human_seg" / "u2net_human_seg.onnx")
    frame, truth = green_screen_frame(64, 80)
    ctx = make_context({1: {"color": frame}}, tmp_path / "scratch", models=None)   # no config needed for a name
    out = run_stage("matte", {"method": "rembg", "rembg": {"model": "u2net_human_seg"}}, ctx)
    assert out[1]["alpha"].shape == (64, 80) and soft_iou(out[1]["alpha"], truth) > 0.8


def test_registry_matte_role_takes_a_rembg_name_or_an_onnx_file(subject_net, rembg_home, tmp_path):
    from backend.models import ModelRegistry

    frame, truth = green_screen_frame(48, 48)
    by_file = ModelRegistry.from_dict({"models": {"matte": str(subject_net)}})
    out = run_stage("matte", {"method": "rembg"}, make_context({1: {"color": frame}}, tmp_path / "a", models=by_file))
    assert soft_iou(out[1]["alpha"], truth) > 0.75     # a hand-set net on a 48x48 frame: it loaded and ran
    by_name = ModelRegistry.from_dict({"models": {"matte": "isnet-general-use"}})   # not downloaded here
    with pytest.raises(ModelMissing, match="rembg d isnet-general-use"):
        run_stage("matte", {"method": "rembg"}, make_context({1: {"color": frame}}, tmp_path / "b", models=by_name))


def test_a_path_in_job_parameters_is_refused(tmp_path):
    ctx = make_context({1: {"color": green_screen_frame(32, 32)[0]}}, tmp_path, models=None)
    with pytest.raises(StageError, match="model config"):
        run_stage("matte", {"method": "rembg", "rembg": {"model": "/tmp/anything.onnx"}}, ctx)


def test_missing_custom_model_names_the_file(rembg_home):
    missing = rembg_home / "models" / "custom" / "gone.onnx"
    with pytest.raises(ModelMissing) as err:
        load_matte_session(str(missing))
    assert str(missing) in str(err.value) and "'matte'" in str(err.value) and err.value.code == "model_missing"


def test_named_model_not_downloaded_fails_offline_with_how_to_get_it(rembg_home):
    with pytest.raises(ModelMissing, match=r"rembg d u2net_human_seg") as err:
        load_matte_session("u2net_human_seg")
    assert str(rembg_home) in str(err.value)


def test_custom_model_outside_rembgs_folder_is_refused_with_the_fix(tmp_path, rembg_home):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        outside = export_subject_net(tmp_path / "elsewhere" / "net.onnx")
    with pytest.raises(StageError, match="REMBG_HOME") as err:
        load_matte_session(str(outside))
    assert str(outside) in str(err.value)


def test_unknown_rembg_name_lists_the_accepted_ones(rembg_home):
    with pytest.raises(StageError, match="isnet-general-use"):
        load_matte_session("no-such-model")
