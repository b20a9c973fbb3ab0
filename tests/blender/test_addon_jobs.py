"""The add-on against a real backend subprocess (the weight-free matte stage): footage in, card out;
timer ticks stay short while a job runs; Esc cancels the job on the backend; connect and start."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import addon_fixtures  # noqa: F401
import bpy
import pytest
from addon_fixtures import (BACKEND_PYTHON, REPO, BackendProcess, disable_addon, enable_addon, free_port,
                            fresh_scene, read_alpha, write_clip)

from blender_addon.ipc import Take


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    process = BackendProcess(tmp_path_factory.mktemp("backend") / "store")
    yield process
    process.stop()


@pytest.fixture
def addon(backend, tmp_path):
    scene = fresh_scene()
    prefs = enable_addon(address=backend.url)
    scene.stage.takes_dir = str(tmp_path / "takes")
    scene.stage.texture_upscale = "OFF"  # the footage keeps its size unless a test asks (64 px frames are taller)
    yield scene, prefs
    disable_addon()


def start_runner(clip: Path):
    from blender_addon.operators.import_footage import footage_runner

    runner = footage_runner(bpy.context, str(clip))
    runner.start(bpy.context, with_timer=False)  # no window in the bpy module: the test is the timer
    return runner


def test_import_footage_makes_a_card_whose_take_has_every_frame_and_the_figures_matte(addon, tmp_path):
    scene, _ = addon
    masks = write_clip(tmp_path / "clip", 8, 64, 48, seed=1)
    assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

    cards = [obj for obj in scene.objects if obj.get("stage_card")]
    assert len(cards) == 1
    take = Take.open(cards[0]["stage_take"])
    assert take.root == (tmp_path / "takes" / "clip").resolve()
    assert list(take.info.frames) == list(range(1, 9)) and take.missing_frames() == []
    assert set(take.info.layers) == {"color", "alpha"}
    for frame, inside in masks.items():
        alpha = read_alpha(take, frame)
        assert alpha[inside].mean() > 0.9 and alpha[~inside].mean() < 0.1  # the figure, not the green


def test_import_footage_with_the_filmed_shadow_asks_the_matte_for_it_and_lays_it_under_the_card(addon, tmp_path):
    """The figure's shadow darkens the green beside it, moving along the frames: the take gets a shadow layer
    that is dark there and clear on the open screen, and the card lays it on the floor instead of its own."""
    import numpy as np
    from addon_fixtures import figure_on_green
    from backend.ipc.imagefiles import png_bytes

    scene, _ = addon
    (tmp_path / "clip").mkdir()
    shade = {}
    for frame in range(1, 7):
        rgb, inside = figure_on_green(64, 48, frame, seed=2)
        region = np.zeros(inside.shape, bool)
        region[36:46, 40 + 2 * frame:56 + 2 * frame] = True  # screen beside the figure, darkened to half
        region &= ~inside
        rgb = rgb.astype(np.float64)
        rgb[region] *= 0.5
        (tmp_path / "clip" / f"clip_{frame:04d}.png").write_bytes(png_bytes(rgb.round().astype(np.uint8)))
        shade[frame] = region
    scene.stage.card_shadow = "FILMED"
    assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

    take = Take.open(tmp_path / "takes" / "clip")
    assert take.info.layers["shadow"].format == "png16" and take.missing_frames() == []
    from blender_addon.scene.frames import read_frame

    for frame, region in shade.items():
        shadow = read_frame(take, "shadow", frame) / 65535.0
        assert shadow[region].mean() > 0.3, frame  # the darkened screen
        assert shadow[:12, 45:].mean() < 0.05, frame  # the open screen, far from the figure
    card = next(obj for obj in scene.objects if obj.get("stage_card"))
    from blender_addon.scene.card_shadow import card_decal

    assert card_decal(card) is not None and not card.visible_shadow and card["stage_shadow"] == "FILMED"


def test_a_clean_plate_keeps_the_screens_own_shading_out_of_the_filmed_shadow(addon, tmp_path):
    """The screen is darker along the bottom of the frame (the cove's corner) in the plate and the footage alike;
    the figure's shadow darkens it beside the figure. Keyed against the plate, the shadow layer holds the figure's
    shadow and not the corner."""
    import numpy as np
    from addon_fixtures import figure_on_green
    from backend.ipc.imagefiles import png_bytes
    from blender_addon.scene.frames import read_frame

    scene, _ = addon
    corner = np.zeros((48, 64), bool)
    corner[40:, :] = True
    (tmp_path / "clip").mkdir()
    shade = {}
    for frame in range(1, 5):
        rgb, inside = figure_on_green(64, 48, frame, seed=3)
        region = np.zeros(inside.shape, bool)
        region[30:38, 40 + 2 * frame:56 + 2 * frame] = True
        region &= ~inside
        rgb = rgb.astype(np.float64)
        rgb[corner & ~inside] *= 0.6
        rgb[region] *= 0.5
        (tmp_path / "clip" / f"clip_{frame:04d}.png").write_bytes(png_bytes(rgb.round().astype(np.uint8)))
        shade[frame] = region
    plate = np.empty((48, 64, 3))
    plate[:] = (30, 200, 40)
    plate[corner] *= 0.6
    (tmp_path / "plate.png").write_bytes(png_bytes(plate.round().astype(np.uint8)))
    scene.stage.card_shadow, scene.stage.clean_plate = "FILMED", str(tmp_path / "plate.png")
    assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}

    take = Take.open(tmp_path / "takes" / "clip")
    assert take.info.params["matte"]["key"]["clean_plate"] is True
    for frame, region in shade.items():
        shadow = read_frame(take, "shadow", frame) / 65535.0
        clear = read_alpha(take, frame) < 0.02
        assert shadow[region].mean() > 0.3, frame                       # the figure's shadow
        assert shadow[corner & clear & ~region].mean() < 0.1, frame    # not the screen's darker corner (0.36 unplated)

    scene.stage.clean_plate = str(tmp_path / "no_such_plate.png")
    with pytest.raises(RuntimeError, match="clean plate .* is not a file"):
        bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip"))


def test_import_footage_takes_a_video_file_and_names_the_take_after_it(addon, tmp_path):
    from blender_addon.headless.movie import encode_mp4

    scene, _ = addon
    masks = write_clip(tmp_path / "clip", 6, 64, 48, seed=2)
    video = encode_mp4(tmp_path / "clip", tmp_path / "walk.mp4", fps=24, pattern="clip_[0-9][0-9][0-9][0-9].png")
    assert bpy.ops.stage.import_footage(filepath=str(video)) == {"FINISHED"}

    card = next(obj for obj in scene.objects if obj.get("stage_card"))
    take = Take.open(card["stage_take"])
    assert take.root == (tmp_path / "takes" / "walk").resolve()
    assert list(take.info.frames) == list(range(1, 7)) and take.missing_frames() == []
    for frame, inside in masks.items():  # video frame n is clip frame n
        alpha = read_alpha(take, frame)
        assert alpha[inside].mean() > 0.85 and alpha[~inside].mean() < 0.15
    decoded = list((tmp_path / "takes" / ".video_frames").glob("walk-*/*.png"))
    assert len(decoded) == 6  # decoded once, kept for the next import


def test_importing_again_with_other_matte_settings_replaces_the_takes_matte(addon, tmp_path):
    scene, _ = addon
    write_clip(tmp_path / "clip", 4, 64, 48, seed=5)
    coverage = []
    for grow in (0, 6):
        scene.stage.matte_grow = grow
        assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}
        take = Take.open(tmp_path / "takes" / "clip")
        assert take.missing_frames() == [] and take.info.params["matte"]["refine"]["grow"] == grow
        coverage.append(read_alpha(take, 2).mean())
    assert coverage[1] > coverage[0] + 0.02  # the grown matte covers more of the frame
    assert len(list((tmp_path / "takes" / "clip" / "jobs").glob("matte-*"))) == 2


def test_timer_ticks_spend_under_20_ms_of_cpu_while_the_backend_job_runs(addon, tmp_path):
    write_clip(tmp_path / "clip", 48, 256, 256, seed=2)
    runner = start_runner(tmp_path / "clip")
    wall, cpu = [], []
    while runner.driver.active:
        in_flight = runner.driver.state == "running"
        start_wall, start_cpu = time.perf_counter(), time.thread_time()
        result = runner.on_event(bpy.context, "TIMER")
        if in_flight and runner.driver.active:  # the last tick builds the card: not a job tick
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.thread_time() - start_cpu)
        time.sleep(0.005)
    assert result == {"FINISHED"}, runner.messages
    assert len(wall) > 40
    wall_ms = sorted(w * 1000 for w in wall)
    p95 = wall_ms[int(0.95 * (len(wall_ms) - 1))]
    cpu_ms = sorted(c * 1000 for c in cpu)
    cpu_p95 = cpu_ms[int(0.95 * (len(cpu_ms) - 1))]
    print(f"{len(wall)} ticks with a job in flight: median {statistics.median(wall_ms):.1f} ms, "
          f"p95 {p95:.1f} ms, max {wall_ms[-1]:.1f} ms wall; CPU p95 {cpu_p95:.1f} ms, max {cpu_ms[-1]:.1f} ms")
    # The add-on's own work per tick (this thread's CPU time) is what keeps Blender responsive; wall
    # time on a shared machine mostly measures other processes, so it is printed, not asserted. Even CPU
    # time swells on a loaded machine (a lone 33 ms tick at load 6, caches shared), so the bound is on
    # almost every tick, and the worst one may not reach a dropped frame's worth of several.
    assert cpu_p95 < 20 and cpu_ms[-1] < 50


def test_escape_cancels_the_job_on_the_backend_and_leaves_the_take_incomplete(addon, backend, tmp_path):
    scene, _ = addon
    write_clip(tmp_path / "clip", 96, 256, 256, seed=3)
    runner = start_runner(tmp_path / "clip")
    while runner.driver.active and not (runner.driver.job is not None and runner.driver.job.state == "running"):
        runner.on_event(bpy.context, "TIMER")  # digest, submit, upload: the backend starts once it has all
    job = runner.driver.job
    assert job is not None and job.state == "running" and job.job_id
    assert runner.on_event(bpy.context, "ESC") == {"RUNNING_MODAL"}  # waits for the backend to confirm
    deadline = time.monotonic() + 10
    while runner.driver.active and time.monotonic() < deadline:
        runner.on_event(bpy.context, "TIMER")
        time.sleep(0.005)
    assert runner.driver.state == "cancelled" and runner.result == {"CANCELLED"}
    assert runner.messages and runner.messages[0][0] == "WARNING" and "cancelled" in runner.messages[0][1]

    status = backend.status()
    assert status["running"] != job.job_id and job.job_id not in status["queued"]
    time.sleep(0.5)
    assert backend.status()["running"] is None  # nothing picked the job up again
    (job_dir,) = (tmp_path / "takes" / "clip" / "jobs").glob("matte-*")
    local = Take.open(job_dir)
    assert local.missing_frames(), "the job finished before the cancel: make it longer"
    assert not (tmp_path / "takes" / "clip" / "take.json").exists()  # no final take, no card
    assert not [obj for obj in scene.objects if obj.get("stage_card")]
    assert bpy.context.window_manager.stage_status.job_running is False


def test_disabling_the_addon_mid_job_cancels_it_and_lets_go_of_the_socket(addon, backend, tmp_path):
    write_clip(tmp_path / "clip", 96, 256, 256, seed=4)
    runner = start_runner(tmp_path / "clip")
    while runner.driver.active and not (runner.driver.job is not None and runner.driver.job.state == "running"):
        runner.on_event(bpy.context, "TIMER")
    job_id = runner.driver.job.job_id
    disable_addon()
    try:
        assert runner.driver.client is None  # socket closed
        deadline = time.monotonic() + 10
        while backend.status()["running"] == job_id and time.monotonic() < deadline:
            time.sleep(0.1)
        assert backend.status()["running"] != job_id
    finally:
        enable_addon()  # the fixture disables it again


def test_connect_shows_the_backends_device_and_stages(addon, backend):
    assert bpy.ops.stage.backend_connect() == {"FINISHED"}
    status = bpy.context.window_manager.stage_status
    assert status.connected and status.address == backend.url
    assert status.device == "cpu" and "matte" in status.stages.split(", ")


def test_connect_to_nothing_says_so(addon):
    addon[1].address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match="no answer from tcp://127.0.0.1"):
        bpy.ops.stage.backend_connect()
    assert not bpy.context.window_manager.stage_status.connected


def test_start_backend_runs_one_from_the_preferences_and_unregister_stops_it(tmp_path):
    fresh_scene()
    models = tmp_path / "models.json"
    models.write_text("{}")
    enable_addon(address=f"tcp://127.0.0.1:{free_port()}", backend_python=BACKEND_PYTHON, backend_cwd=str(REPO),
                 store_dir=str(tmp_path / "store"), device="cpu", models_config=str(models))
    from blender_addon import runtime

    try:
        assert bpy.ops.stage.backend_start() == {"FINISHED"}
        process = runtime.session.backend.process
        assert process.poll() is None
        status = bpy.context.window_manager.stage_status
        assert status.connected and "matte" in status.stages
        assert bpy.ops.stage.backend_stop() == {"FINISHED"}
        assert process.poll() is not None and not bpy.context.window_manager.stage_status.connected
        assert bpy.ops.stage.backend_start() == {"FINISHED"}  # and again, on the same address
        process = runtime.session.backend.process
        assert process.poll() is None
    finally:
        disable_addon()
    assert process.poll() is not None  # unregister stopped the backend it had started
    assert runtime.session.backend is None


def test_a_frame_taller_than_the_footage_gets_the_cards_colour_and_matte_upscaled(addon, tmp_path):
    scene, _ = addon
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 160, 100
    scene.stage.texture_upscale = "PREVIEW"
    masks = write_clip(tmp_path / "clip", 2, 64, 48, seed=3)
    assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip")) == {"FINISHED"}
    (card,) = [obj for obj in scene.objects if obj.get("stage_card")]
    take = Take.open(card["stage_take"])
    assert (take.info.width, take.info.height) == (256, 192)  # 48 px footage, 160 px frame: 4x (labelled resample)
    assert "upscale" in take.info.stage
    for frame, inside in masks.items():
        alpha = read_alpha(take, frame)
        assert alpha.shape == (192, 256)
        big = inside.repeat(4, 0).repeat(4, 1)
        assert alpha[big].mean() > 0.9 and alpha[~big].mean() < 0.1
    scene.stage.texture_upscale = "OFF"
    assert bpy.ops.stage.import_footage(filepath=str(tmp_path / "clip"), name="kept") == {"FINISHED"}
    kept = Take.open(tmp_path / "takes" / "kept")
    assert (kept.info.width, kept.info.height) == (64, 48)
