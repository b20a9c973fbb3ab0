"""A job's id covers what its output depends on: model files, side inputs (uploaded, by digest) and the
stage's version; unchanged inputs keep the id, so a job still resumes."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from depth_fixtures import tiny_depth_anything  # noqa: E402,F401  (a fixture)
from spine_fixtures import Backend, dstage, frame_files  # noqa: E402

from backend.ipc.digest import digest_arrays  # noqa: E402
from backend.jobs import identify, run_job  # noqa: E402
from backend.models import ModelRegistry  # noqa: E402
from backend.stages.base import StageError, get_stage, register  # noqa: E402
from backend.store import JobSpec, Store  # noqa: E402


def scene(index: int, size=(64, 48)) -> np.ndarray:
    """A disc that moves across a gradient: enough structure for depth and optical flow."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :, None]
    cv2.circle(image, (12 + 6 * index, height // 2), 9, (250, 240, 90), -1)
    return image


def stored_spec(store: Store, stage: str, params: dict, count: int = 3) -> JobSpec:
    frames = []
    for i in range(1, count + 1):
        arrays = {"color": scene(i)}
        store.put_input(digest_arrays(arrays), arrays)
        frames.append((i, digest_arrays(arrays)))
    return JobSpec(stage, params, frames, (64, 48))


def job_id(store: Store, stage: str, params: dict, models) -> str:
    spec = stored_spec(store, stage, params)
    identify(spec, models)
    return spec.job_id


def test_a_rewritten_or_touched_model_file_changes_the_job_and_its_frames(tmp_path, tiny_depth_anything):
    torch.set_num_threads(1)
    folder = tmp_path / "model"
    shutil.copytree(tiny_depth_anything, folder)
    store, models = Store(tmp_path / "store"), {"depth": str(folder)}
    spec = stored_spec(store, "depth", {})
    identify(spec, models)
    first = run_job(store, spec, models=models)
    assert job_id(store, "depth", {}, models) == spec.job_id  # unchanged weights: the same job, it resumes
    assert first.info.versions["models"]["depth"]["path"] == str(folder)  # take.json records them

    config = folder / "config.json"
    stat = config.stat()
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, bytes unchanged
    assert job_id(store, "depth", {}, models) != spec.job_id
    os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert job_id(store, "depth", {}, models) == spec.job_id

    from transformers import DepthAnythingForDepthEstimation

    torch.manual_seed(7)  # other weights in the same files: only the contents changed
    model = DepthAnythingForDepthEstimation.from_pretrained(folder)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    model.save_pretrained(folder)
    first.path("depth", 2).unlink()  # the old job has a frame to compute again ...
    with pytest.raises(StageError, match="'depth' changed since this job was submitted") as e:
        run_job(store, spec, models=models)
    assert e.value.code == "stale_job"  # ... but never from the new weights under its old id
    again = JobSpec(spec.stage, {}, spec.frames, spec.size)
    identify(again, models)
    assert again.job_id != spec.job_id
    second = run_job(store, again, models=models)
    assert any(not np.array_equal(cv2.imread(str(first.path("depth", f)), cv2.IMREAD_UNCHANGED),
                                  cv2.imread(str(second.path("depth", f)), cv2.IMREAD_UNCHANGED)) for f in (1, 3))


def test_a_registry_role_pointed_elsewhere_or_a_hub_snapshot_changes_the_id(tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"weights a")
    b.write_bytes(b"weights b")
    store = Store(tmp_path / "store")
    params = {"method": "rembg", "rembg": {"model": "config"}}
    first = job_id(store, "matte", params, ModelRegistry.from_dict({"models": {"matte": {"file": str(a)}}}))
    assert first == job_id(store, "matte", params, ModelRegistry.from_dict({"models": {"matte": {"file": str(a)}}}))
    assert first != job_id(store, "matte", params, ModelRegistry.from_dict({"models": {"matte": {"file": str(b)}}}))
    # a chroma key loads no model: its id does not depend on the models file at all
    chroma = job_id(store, "matte", {}, ModelRegistry.from_dict({"models": {"matte": {"file": str(a)}}}))
    assert chroma == job_id(store, "matte", {}, ModelRegistry.from_dict({"models": {"matte": {"file": str(b)}}}))

    cache = tmp_path / "hf"
    for commit in ("1111aaaa", "2222bbbb"):  # the Hugging Face cache layout: snapshots/<commit>/
        snapshot = cache / "models--org--depth" / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
    refs = cache / "models--org--depth" / "refs"
    refs.mkdir()
    ids = []
    for commit in ("1111aaaa", "2222bbbb"):
        (refs / "main").write_text(commit)  # a newer revision of the same hub id was fetched
        registry = ModelRegistry.from_dict({"models": {"depth": "org/depth"}, "cache_dir": str(cache)})
        spec = stored_spec(store, "depth", {})
        identify(spec, registry)
        assert spec.models["depth"]["commit"] == commit
        ids.append(spec.job_id)
    assert ids[0] != ids[1]


def test_a_changed_keyframe_image_changes_the_id_and_an_unchanged_one_resumes(tmp_path):
    source, keys = tmp_path / "in", tmp_path / "keys"
    source.mkdir()
    keys.mkdir()
    for i in range(1, 8):
        cv2.imwrite(str(source / f"{i:04d}.png"), scene(i))
    for i in (1, 7):
        cv2.imwrite(str(keys / f"{i:04d}.png"), 255 - scene(i))
    args = ["run", "propagate", "--in", str(source), "--store", str(tmp_path / "store"), "--set", "keyframes_from=folder",
            "--set", "detect_cuts=false", "--side", f"keyframes={keys}"]
    from backend.cli import main

    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = json.loads((tmp_path / "a" / "take.json").read_text())
    assert [k for k, _ in first["source"]["sides"]["keyframes"]] == [1, 7]  # take.json records their digests
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "take.json").read_text())["job_id"] == first["job_id"]

    image = 255 - scene(7)
    image[:8] = 0  # the artist repainted the last keyframe
    cv2.imwrite(str(keys / "0007.png"), image)
    assert main([*args, "--out", str(tmp_path / "c")]) == 0
    changed = json.loads((tmp_path / "c" / "take.json").read_text())
    assert changed["job_id"] != first["job_id"]
    assert frame_files(tmp_path / "c") != frame_files(tmp_path / "a")


def test_a_stage_version_bump_changes_the_id_and_refuses_the_old_job(tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    spec = stored_spec(store, "matte", {})
    identify(spec)
    assert spec.version == get_stage("matte").version
    monkeypatch.setattr(type(get_stage("matte")), "version", spec.version + 1)
    assert job_id(store, "matte", {}, None) != spec.job_id
    with pytest.raises(StageError, match="now version") as e:
        run_job(store, spec)
    assert e.value.code == "stale_job"


def test_a_stage_must_declare_its_version():
    class Unversioned:
        name = "unversioned_test_stage"

    with pytest.raises(TypeError, match="version = 1"):
        register(Unversioned)


def test_side_inputs_travel_through_the_server_like_frames(tmp_path):
    """Keyframes uploaded over the wire (never a server path) give the embedded run's job id and files."""
    source, keys = tmp_path / "in", tmp_path / "keys"
    source.mkdir()
    (keys / "color").mkdir(parents=True)
    (keys / "alpha").mkdir()
    for i in range(1, 6):
        cv2.imwrite(str(source / f"{i:04d}.png"), scene(i))
    for i in (1, 5):
        cv2.imwrite(str(keys / "color" / f"{i:04d}.png"), 255 - scene(i))
        cv2.imwrite(str(keys / "alpha" / f"{i:04d}.png"), np.full((48, 64), 200, np.uint8))
    common = ["run", "propagate", "--in", str(source), "--set", "keyframes_from=folder", "--set", "detect_cuts=false",
              "--set", "layers=[\"color\",\"alpha\"]", "--side", f"keyframes={keys}"]
    embedded = dstage(*common, "--out", str(tmp_path / "embedded"), "--store", str(tmp_path / "store"))
    assert embedded.returncode == 0, embedded.stderr
    backend = Backend(tmp_path / "server_store").start()
    try:
        remote = dstage(*common, "--out", str(tmp_path / "remote"), "--server", backend.url)
    finally:
        backend.stop()
    assert remote.returncode == 0, remote.stderr
    assert frame_files(tmp_path / "remote") == frame_files(tmp_path / "embedded")
    info = [json.loads((tmp_path / name / "take.json").read_text()) for name in ("embedded", "remote")]
    assert info[0]["job_id"] == info[1]["job_id"]
    alpha = cv2.imread(str(tmp_path / "remote" / "alpha" / "0003.png"), cv2.IMREAD_UNCHANGED)
    assert abs(float(alpha.mean()) - 200) < 3  # the keyframes' own alpha/ rode along


def test_diffusion_declares_every_model_it_loads(tmp_path):
    """Checkpoint, VAE, the ControlNet of the checkpoint's family, annotators and LoRAs: each in the id."""
    sdxl = tmp_path / "sdxl"
    sdxl.mkdir()
    (sdxl / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    files = {name: tmp_path / f"{name}.safetensors" for name in ("cn", "ink", "vae")}
    for path in files.values():
        path.write_bytes(b"w")
    (tmp_path / "annotators").mkdir()
    registry = ModelRegistry.from_dict({"models": {
        "checkpoint": {"path": str(sdxl)}, "vae": {"file": str(files["vae"])},
        "controlnet_xl": {"depth": {"file": str(files["cn"])}}, "lora": {"ink": {"file": str(files["ink"])}},
        "annotators": {"path": str(tmp_path / "annotators")}}})
    params = {"prompt": "x", "controls": [{"type": "depth"}], "loras": [{"name": "ink"}]}
    store = Store(tmp_path / "store")
    spec = stored_spec(store, "diffuse", params)
    identify(spec, registry)
    assert sorted(spec.models) == ["annotators", "checkpoint", "controlnet_xl.depth", "lora.ink", "vae"]
    for name, path in files.items():  # any one of them rewritten: another job
        path.write_bytes(b"other weights")
        assert job_id(store, "diffuse", params, registry) != spec.job_id, name
        path.write_bytes(b"w")
        os.utime(path, ns=(path.stat().st_atime_ns, _mtime(spec, name)))  # back as it was
    assert job_id(store, "diffuse", params, registry) == spec.job_id
    mapped = {**params, "controls": [{"type": "depth", "source": "map"}]}  # the render's map: no annotator
    spec_mapped = stored_spec(store, "diffuse", mapped)
    identify(spec_mapped, registry)
    assert "annotators" not in spec_mapped.models


def _mtime(spec: JobSpec, name: str) -> int:
    role = {"cn": "controlnet_xl.depth", "ink": "lora.ink", "vae": "vae"}[name]
    return spec.models[role]["files"]["mtime_ns"]


def test_inputs_are_checked_against_the_declared_size(tmp_path):
    """A frame whose arrays are not the size the job was submitted with is refused before it is stored."""
    from backend.ipc.server import RequestError
    from backend.service import StoreService

    service = StoreService(Store(tmp_path / "store"), device="cpu")
    right, wrong = {"color": scene(1)}, {"color": scene(2, size=(32, 48))}
    accepted = service.submit({"stage": "matte", "params": {}, "size": [64, 48],
                               "frames": [[1, digest_arrays(right)], [2, digest_arrays(wrong)]]})
    service.put_input(accepted["job_id"], 1, digest_arrays(right), right)
    with pytest.raises(RequestError, match="layer 'color' is 32x48, but the job's frames are 64x48") as e:
        service.put_input(accepted["job_id"], 2, digest_arrays(wrong), wrong)
    assert e.value.code == "bad_input"
    assert service.missing_inputs(accepted["job_id"]) == [2]
