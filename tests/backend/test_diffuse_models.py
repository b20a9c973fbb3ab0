"""The model registry: config parsing, offline resolution, clear errors for missing models, the warm cache."""

from __future__ import annotations

import json
import os

import pytest

from backend.models import (
    DEFAULT_MODELS, ModelConfigError, ModelMissing, ModelRegistry, check_models, format_check, parse_entry,
)
from backend.stages.base import StageError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hf_cache(cache, repo_id: str, files: dict[str, str]):
    """A repository laid out the way huggingface_hub caches it (refs/main -> snapshots/<commit>/...)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snap = repo / "snapshots" / COMMIT
    for name, text in files.items():
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_text(text)
    return snap


def test_entries_are_read_as_hub_ids_folders_or_single_files(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "w.safetensors").write_bytes(b"")
    assert parse_entry("checkpoint", "org/name").kind == "hub"
    assert parse_entry("checkpoint", str(tmp_path / "model")).kind == "folder"
    assert parse_entry("checkpoint", str(tmp_path / "w.safetensors")).kind == "single_file"
    assert parse_entry("checkpoint", {"file": "~/x.ckpt"}).ref == os.path.expanduser("~/x.ckpt")
    spec = parse_entry("lora.ink", {"id": "org/loras", "filename": "ink.safetensors", "strength": 0.7})
    assert (spec.kind, spec.filename, spec.options) == ("hub", "ink.safetensors", {"strength": 0.7})
    with pytest.raises(ModelConfigError, match="exactly one of"):
        parse_entry("vae", {"id": "a/b", "path": "/x"})


def test_nested_roles_are_flattened_and_defaults_fill_the_rest(tmp_path):
    reg = ModelRegistry.from_dict({"models": {"controlnet": {"depth": "me/depth-cn"}, "lora": {"ink": {"file": "/x.safetensors"}}}})
    assert reg.spec("controlnet.depth").ref == "me/depth-cn"
    assert reg.spec("lora.ink").kind == "single_file"
    assert reg.spec("controlnet.canny").ref == DEFAULT_MODELS["controlnet.canny"]
    assert not reg.spec("controlnet.canny").configured
    with pytest.raises(ModelConfigError, match="unknown key 'model'"):
        ModelRegistry.from_dict({"model": {}})


def test_a_missing_file_names_the_model_the_key_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere" / "anything-v5.safetensors"
    reg = ModelRegistry.from_dict({"models": {"checkpoint": {"file": str(missing)}}})
    with pytest.raises(ModelMissing) as err:
        reg.resolve("checkpoint")
    assert isinstance(err.value, StageError) and err.value.code == "model_missing"
    text = str(err.value)
    assert "'checkpoint'" in text and str(missing) in text and "To fix: put the file at" in text


def test_a_hub_id_resolves_only_from_the_local_cache(tmp_path):
    cache = tmp_path / "hub"
    snap = fake_hf_cache(cache, "me/tiny-cn", {"config.json": "{}"})
    reg = ModelRegistry.from_dict({"cache_dir": str(cache), "models": {
        "controlnet.depth": "me/tiny-cn", "controlnet.canny": "me/not-downloaded"}})
    found = reg.resolve("controlnet.depth")
    assert (found.kind, found.path_or_id, found.path) == ("hub", "me/tiny-cn", snap)
    with pytest.raises(ModelMissing) as err:
        reg.resolve("controlnet.canny")
    text = str(err.value)
    assert "me/not-downloaded" in text and "'controlnet.canny'" in text
    assert "huggingface-cli download me/not-downloaded" in text and "allow_download" in text


def test_a_role_without_default_says_how_to_configure_it():
    with pytest.raises(ModelMissing, match=r"add \"lora.ghost\""):
        ModelRegistry.from_dict({}).resolve("lora.ghost")


def test_single_file_config_must_exist_locally(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    ckpt.write_bytes(b"")
    reg = ModelRegistry.from_dict({"cache_dir": str(tmp_path / "hub"), "models": {
        "checkpoint": {"file": str(ckpt), "config": "stable-diffusion-v1-5/stable-diffusion-v1-5"}}})
    with pytest.raises(ModelMissing, match=r'--include "\*.json" "\*.txt"'):
        reg.resolve("checkpoint")


def test_check_models_reports_found_and_missing_roles(tmp_path):
    cache = tmp_path / "hub"
    fake_hf_cache(cache, "me/annotators", {"ControlNetHED.pth": "x"})
    (tmp_path / "sd").mkdir()
    config = {"cache_dir": str(cache), "models": {
        "checkpoint": {"path": str(tmp_path / "sd")},
        "annotators": "me/annotators",
        "vae": {"file": str(tmp_path / "missing-vae.safetensors")},
    }}
    report = {e["role"]: e for e in check_models(config)}
    assert report["checkpoint"]["status"] == "found" and report["checkpoint"]["path"] == str(tmp_path / "sd")
    assert report["annotators"]["status"] == "found"
    assert report["vae"]["status"] == "missing" and "missing-vae.safetensors" in report["vae"]["how"]
    # roles left to their defaults are listed too, with the exact id and the command that fetches it
    depth = report["controlnet.depth"]
    assert depth["status"] == "missing" and not depth["configured"]
    assert f"huggingface-cli download {DEFAULT_MODELS['controlnet.depth']}" in depth["how"]
    text = format_check(list(report.values()))
    assert "found" in text and "missing" in text and "controlnet.depth" in text


def test_models_file_comes_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"allow_download": True, "models": {"depth": "me/depth"}}))
    monkeypatch.setenv("DSTAGE_MODELS", str(path))
    reg = ModelRegistry.from_file()
    assert reg.allow_download and reg.spec("depth").ref == "me/depth"
    assert not ModelRegistry.from_file(path, allow_download=False).allow_download
    monkeypatch.setenv("DSTAGE_MODELS", str(tmp_path / "absent.json"))
    with pytest.raises(ModelConfigError, match="does not exist"):
        ModelRegistry.from_file()
    path.write_text("{not json")
    with pytest.raises(ModelConfigError, match="not valid JSON"):
        ModelRegistry.from_file(path)


def test_warm_cache_reuses_a_key_and_rebuilds_when_the_model_changes(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"one")
    reg = ModelRegistry.from_dict({"models": {"upscaler": {"file": str(weights)}}})
    builds = []

    def load():
        builds.append(1)
        return object()

    key = ("upscale", reg.resolve("upscaler").fingerprint())
    first = reg.get_or_load(key, load)
    assert reg.get_or_load(key, load) is first and len(builds) == 1
    weights.write_bytes(b"two, longer")  # the file on disk changed: its fingerprint changes
    key2 = ("upscale", reg.resolve("upscaler").fingerprint())
    assert key2 != key
    second = reg.get_or_load(key2, load)
    assert second is not first and len(builds) == 2
    assert list(reg.warm_slots()) == ["upscale"]  # the old model was dropped, not kept beside the new one
    other = reg.get_or_load(("depth", 1), load)
    assert reg.get_or_load(key2, load) is second and other is not second and len(builds) == 3
