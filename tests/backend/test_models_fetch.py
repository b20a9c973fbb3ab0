"""`dstage models fetch`: the plan it prints, the refusal where downloads are off, and a hub it cannot reach
(no hub is reachable here, so a real download is not tested)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import dstage, free_port  # noqa: E402


def models_file(tmp_path: Path, allow: bool) -> Path:
    here = tmp_path / "up.safetensors"
    here.write_bytes(b"weights")
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"allow_download": allow, "cache_dir": str(tmp_path / "hf"), "models": {
        "depth": "org/tiny-depth", "upscaler": {"file": str(here)}, "vae": {"path": str(tmp_path / "nowhere")}}}))
    return path


def test_the_plan_and_the_refusal_when_downloads_are_off(tmp_path):
    result = dstage("models", "fetch", "--models", str(models_file(tmp_path, allow=False)))
    assert result.returncode == 2, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["download", "depth", "org/tiny-depth"]
    assert lines[1].split()[:3] == ["here", "upscaler", str(tmp_path / "up.safetensors")]
    assert lines[2].split()[:2] == ["missing", "vae"] and "put a diffusers folder" in lines[2]
    assert result.stderr.strip() == (f"dstage: downloads are off in {tmp_path / 'models.json'}; set \"allow_download\": "
                                     "true there to fetch the 1 model(s) above, or run the download on a machine with "
                                     "network and copy the Hugging Face cache here")
    assert not (tmp_path / "hf").exists()  # nothing was fetched


def test_an_unreachable_hub_fails_per_model_with_the_fix(tmp_path):
    config = models_file(tmp_path, allow=True)
    assert dstage("models", "fetch", "--models", str(config), "--dry-run").returncode == 0
    result = dstage("models", "fetch", "--models", str(config), "--role", "depth",
                    env_extra={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode == 1
    assert "could not download org/tiny-depth for 'depth'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("dstage: 1 of 1 download(s) failed")
