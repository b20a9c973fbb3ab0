"""The headless shot runner end to end, tiny: the sample footage rendered here, a backend it starts itself
(no model weights, so the labelled preview engines), the flash room rendered with Cycles at 96×54."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from addon_fixtures import BACKEND_PYTHON, build_tiny_models, free_port  # noqa: F401  (sets sys.path and imports bpy first)
from backend.ipc.imagefiles import png_bytes
from backend.ipc.take import Take
from blender_addon.headless.__main__ import main as shot_main
from blender_addon.headless.errors import ShotError
from blender_addon.headless.images import read_pixels
from blender_addon.headless.runner import ShotConfig, run_shot

FRAMES = 3
SIZE = (96, 54)


def tiny_config(out: Path, **changes) -> ShotConfig:
    settings = dict(scene="flash_room", out=out, server=f"tcp://127.0.0.1:{free_port()}", backend_python=BACKEND_PYTHON,
                    models=str(out / "no-models.json"), frames=(1, FRAMES), size=SIZE, samples=1,
                    footage_frames=FRAMES, footage_size=(48, 80), log=lambda *a: None)
    settings.update(changes)
    return ShotConfig(**settings)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    out = tmp_path_factory.mktemp("shot")
    (out / "no-models.json").write_text("{}")
    first = run_shot(tiny_config(out))
    again = run_shot(tiny_config(out))  # as after an interruption: everything on disk is kept
    return out, first, again


def test_the_shot_writes_every_frame_the_preview_and_a_contact_sheet(shot):
    out, first, _ = shot
    frames = sorted((out / "frames").glob("*.png"))
    assert [p.name for p in frames] == [f"{f:04d}.png" for f in range(1, FRAMES + 1)]
    pixels = read_pixels(frames[0])
    assert pixels.shape[:2] == (SIZE[1], SIZE[0])
    assert float(pixels[..., :3].std()) > 0.01  # a lit scene, not a blank frame
    sheet = read_pixels(out / "contact_sheet.png")
    assert sheet.shape[0] > SIZE[1] and sheet.shape[1] >= SIZE[0]  # frames, with their numbers below
    assert first.outputs["contact_sheet"] == str(out / "contact_sheet.png")
    assert first.counts["render"] == {"frames": FRAMES, "rendered": FRAMES, "kept": 0}
    assert "Saved:" in (out / "blender.log").read_text()  # Blender's line per frame, kept off the terminal


def test_with_no_weights_every_step_says_it_uses_a_preview_engine(shot):
    out, first, _ = shot
    summary = json.loads((out / "shot.json").read_text())
    assert summary["engines"]["matte"]["stage"] is not None
    assert summary["engines"]["stylize"]["preview"] is True  # no diffusion weights: labelled as a preview
    assert summary["engines"]["stylize"]["notes"]  # and it says why the real engine was not used
    for step in ("normal", "albedo"):  # the relightable card's layers: labelled previews without weights
        assert summary["engines"][step]["preview"] is True and summary["engines"][step]["stage"] == f"preview_{step}"
    assert "upscale" not in summary["engines"]  # the footage is taller than the frame: nothing to upscale
    table = (out / "times.txt").read_text()
    for step in ("footage", "scene", "backend", "engines", "matte", "card", "render", "contact sheet"):
        assert step in table


def test_the_card_take_holds_colour_alpha_and_depth_and_the_matte_separates_the_figure(shot):
    out, _, _ = shot
    card = Take.open(out / "takes" / "card")
    assert set(card.info.layers) == {"color", "alpha", "depth", "normal", "albedo"}
    assert list(card.info.frames) == list(range(1, FRAMES + 1))
    alpha = read_pixels(card.path("alpha", 2))[..., 0]
    assert alpha.min() < 0.05 and alpha.max() > 0.95  # green screen gone, the figure kept
    assert 0.02 < float((alpha > 0.5).mean()) < 0.6


def test_running_again_recomputes_and_rerenders_nothing(shot):
    _, first, again = shot
    for step in ("matte", "depth", "stylize", "normal", "albedo"):
        assert first.counts[step] == {"frames": FRAMES, "kept": 0, "fetched": FRAMES}, step
    assert again.counts["render"] == {"frames": FRAMES, "rendered": 0, "kept": FRAMES}
    for step in ("matte", "stylize"):
        assert again.counts[step]["kept"] == FRAMES, step
    assert again.engines.keys() == first.engines.keys()


def test_a_frame_taller_than_the_footage_gets_the_cards_textures_upscaled_to_it(tmp_path):
    (tmp_path / "no-models.json").write_text("{}")
    result = run_shot(tiny_config(tmp_path, size=(48, 150), frames=(1, 1), footage_frames=1))
    assert result.engines["upscale"].engine.preview  # no upscaler weights: the labelled resample
    card = Take.open(tmp_path / "takes" / "card")
    assert (card.info.width, card.info.height) == (96, 160)  # 80 px footage, 150 px frame: 2x
    for layer in ("color", "alpha", "albedo"):
        assert read_pixels(card.path(layer, 1)).shape[:2] == (160, 96), layer
    assert read_pixels(card.path("normal", 1)).shape[:2] == (80, 48)  # shading detail: kept at its own size
    upscaled = Take.open(tmp_path / "takes" / "upscale-upscale")
    assert upscaled.info.layers["alpha"].format == "png16"


def test_card_shadow_filmed_asks_the_matte_for_its_shadow_and_lays_it_under_the_card(tmp_path):
    import bpy
    from blender_addon.scene.card_shadow import card_decal

    (tmp_path / "no-models.json").write_text("{}")
    run_shot(tiny_config(tmp_path, frames=(1, 1), footage_frames=1, card_shadow="FILMED"))
    card = Take.open(tmp_path / "takes" / "card")
    assert card.info.layers["shadow"].format == "png16" and card.path("shadow", 1).is_file()
    placed = bpy.data.objects["Character Card"]
    assert card_decal(placed) is not None and not placed.visible_shadow


def test_a_clean_plate_goes_to_the_matte_and_a_missing_one_is_named(tmp_path):
    from blender_addon.headless.images import read_rgb8

    (tmp_path / "no-models.json").write_text("{}")
    run_shot(tiny_config(tmp_path, frames=(1, 1), footage_frames=1))  # renders the sample footage
    frame = read_rgb8(tmp_path / "footage" / "0001.png").reshape(-1, 3).astype(int)
    screen = np.median(frame[frame[:, 1] > frame[:, [0, 2]].max(axis=1) + 40], axis=0)  # the flat-lit green
    (tmp_path / "plate.png").write_bytes(png_bytes(np.broadcast_to(screen.astype(np.uint8), (80, 48, 3)).copy()))
    run_shot(tiny_config(tmp_path, frames=(1, 1), footage_frames=1, card_shadow="BOTH",
                         clean_plate=tmp_path / "plate.png"))
    matte = Take.open(tmp_path / "takes" / "matte-matte")
    assert matte.info.params["key"]["clean_plate"] is True and "shadow" in matte.info.layers
    alpha = read_pixels(Take.open(tmp_path / "takes" / "card").path("alpha", 1))[..., 0]
    assert alpha.min() < 0.05 and alpha.max() > 0.95 and 0.02 < float((alpha > 0.5).mean()) < 0.6
    with pytest.raises(ShotError, match="clean plate .* is not a file"):
        run_shot(tiny_config(tmp_path, frames=(1, 1), footage_frames=1, clean_plate=tmp_path / "none.png"))


@pytest.fixture
def one_frame(tmp_path):
    folder = tmp_path / "footage"
    folder.mkdir()
    (folder / "0001.png").write_bytes(png_bytes(np.full((8, 8, 3), 90, np.uint8)))
    return folder


def test_an_unknown_scene_fails_naming_the_step_and_the_choices(tmp_path, one_frame):
    with pytest.raises(ShotError) as e:
        run_shot(tiny_config(tmp_path, scene="moon_base", footage=one_frame))
    assert e.value.step == "scene" and "flash_room" in str(e.value)


def test_a_missing_blend_fails_naming_the_path(tmp_path, one_frame):
    missing = tmp_path / "nowhere.blend"
    with pytest.raises(ShotError) as e:
        run_shot(tiny_config(tmp_path, scene=str(missing), footage=one_frame))
    assert e.value.step == "scene" and str(missing) in str(e.value)


def test_a_footage_folder_without_numbered_images_fails_saying_how_to_name_them(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "notes.txt").write_text("no frames here")
    with pytest.raises(ShotError) as e:
        run_shot(tiny_config(tmp_path, footage=tmp_path / "clip"))
    assert e.value.step == "footage" and "0001.png" in str(e.value)


def test_bad_arguments_exit_2_with_the_expected_form(capsys):
    with pytest.raises(SystemExit) as e:
        shot_main(["flash_room", "--out", "x", "--frames", "one-two"])
    assert e.value.code == 2
    assert "1-48" in capsys.readouterr().err


BUILD_TINY_VACE = """
import json, sys
from pathlib import Path
from video_fixtures import build_tiny_vace
root = Path(sys.argv[1])
(root / "models.json").write_text(json.dumps({"models": {"vace": str(build_tiny_vace(root / "vace"))}}))
"""


def test_engine_stylize_vace_makes_the_cards_colour_with_wan_vace(tmp_path):
    models = build_tiny_models(tmp_path, BUILD_TINY_VACE)
    video = {"steps": 2, "size": 80, "segment_frames": 5, "overlap": 1}
    result = run_shot(tiny_config(tmp_path, models=str(models), frames=(1, 1), footage_frames=1,
                                  engines={"stylize": "vace"}, params={"propagate": {"video": video}}))
    engine = result.engines["stylize"].engine
    assert (engine.key, engine.stage, engine.preview) == ("vace", "propagate", False)
    takes = [Take.open(p.parent) for p in (tmp_path / "takes").glob("*/take.json")]
    [vace] = [t for t in takes if t.info.params.get("engine") == "vace"]
    assert vace.info.params["video"]["steps"] == 2 and vace.info.params["video"]["pin_keyframes"] is False
    assert vace.missing_frames() == []

    # --character: the artist's image is VACE's reference; the same shot with it comes out differently.
    plain = vace.path("color", 1).read_bytes()  # the re-run rewrites the same take
    character = np.zeros((80, 48, 3), np.uint8)
    character[20:60, 12:36] = (220, 40, 40)
    (tmp_path / "hero.png").write_bytes(png_bytes(character))
    run_shot(tiny_config(tmp_path, models=str(models), frames=(1, 1), footage_frames=1, character=tmp_path / "hero.png",
                         engines={"stylize": "vace"}, params={"propagate": {"video": video}}))
    takes = [Take.open(p.parent) for p in (tmp_path / "takes").glob("*/take.json")]
    [referenced] = [t for t in takes if t.info.params.get("video", {}).get("reference") == "side"]
    assert referenced.path("color", 1).read_bytes() != plain
    with pytest.raises(ShotError, match="character image .* is not a file"):
        run_shot(tiny_config(tmp_path, models=str(models), frames=(1, 1), footage_frames=1,
                             character=tmp_path / "none.png", engines={"stylize": "vace"},
                             params={"propagate": {"video": video}}))


BUILD_TINY_ANIMATE = """
import json, sys
from pathlib import Path
from diffuse_fixtures import build_models, openpose_weights
from video_fixtures import build_tiny_animate
root = Path(sys.argv[1])
config = build_models(root)
config["models"]["animate"] = {"path": str(build_tiny_animate(root / "animate"))}
openpose_weights(Path(config["models"]["annotators"]["path"]))
(root / "models.json").write_text(json.dumps(config))
"""


def test_engine_stylize_animate_makes_the_cards_colour_with_wan_animate(tmp_path):
    """The performer in the footage (pose by the annotators) drives the first diffused keyframe's character."""
    models = build_tiny_models(tmp_path, BUILD_TINY_ANIMATE)
    video = {"steps": 2, "size": 64, "segment_frames": 5, "overlap": 1}
    result = run_shot(tiny_config(tmp_path, models=str(models), frames=(1, 2), footage_frames=2,
                                  engines={"stylize": "animate"},
                                  params={"propagate": {"video": video}}))
    engine = result.engines["stylize"].engine
    assert (engine.key, engine.stage, engine.preview) == ("animate", "propagate", False)
    takes = [Take.open(p.parent) for p in (tmp_path / "takes").glob("*/take.json")]
    [animate] = [t for t in takes if t.info.params.get("engine") == "animate"]
    assert animate.missing_frames() == [] and list(animate.info.frames) == [1, 2]
    card = Take.open(tmp_path / "takes" / "card")
    assert card.info.source["color"] == str(animate.root)  # the card shows what Wan-Animate made


def test_with_cluster_the_frames_render_as_ray_tasks_and_match_the_local_render(shot, tmp_path):
    """--cluster auto: a one-machine Ray cluster on loopback with this Blender as its render node."""
    import shutil

    out, _, _ = shot
    copy = tmp_path / "shot"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("frames", "*.mp4", "contact_sheet.png", "*.log"))
    logged: list[str] = []
    result = run_shot(tiny_config(copy, cluster="auto", cluster_chunk=2,
                                  log=lambda *a: logged.append(" ".join(map(str, a)))))
    assert result.counts["render"] == {"frames": FRAMES, "kept": 0, "rendered": FRAMES}
    chunks = [line for line in logged if line.startswith("render: frames ")]  # each chunk logged as it lands
    assert sorted(chunks) == [f"render: frames {a}-{min(a + 1, FRAMES)}: {min(2, FRAMES - a + 1)} rendered"
                              for a in range(1, FRAMES + 1, 2)], logged
    assert (copy / "shot.blend").is_file() and (copy / "contact_sheet.png").is_file()
    for frame in range(1, FRAMES + 1):
        name = f"{frame:04d}.png"
        # the same picture; the flash room is denoised (OIDN), which moves a few pixels by a level or two
        # between processes (tests/backend/test_cluster_render.py checks exact pixels on an undenoised scene)
        diff = np.abs(read_pixels(copy / "frames" / name) - read_pixels(out / "frames" / name))
        assert diff.mean() < 1 / 255 and (diff > 2.5 / 255).mean() < 0.01, (name, diff.mean(), diff.max())
