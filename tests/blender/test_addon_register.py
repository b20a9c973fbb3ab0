"""Registering the add-on in real bpy: twice in a row, nothing left behind; operators and panels present."""

from __future__ import annotations

import threading

import addon_fixtures  # noqa: F401  (puts the repository on sys.path)
import bpy
import pytest
from addon_fixtures import disable_addon, enable_addon, fresh_scene
from scene_fixtures import make_take, solid

OPERATORS = ("backend_start", "backend_stop", "backend_connect", "render_passes", "stylize_scene", "import_footage", "add_card",
             "setup_shot", "card_shadow")


def stage_types() -> set[str]:
    return {name for name in dir(bpy.types) if name.startswith(("STAGE_", "StageSettings", "StageStatus",
                                                               "StageLora", "StageControlUnit", "StagePref"))}


def handler_counts() -> dict[str, int]:
    return {name: len(getattr(bpy.app.handlers, name)) for name in dir(bpy.app.handlers)
            if isinstance(getattr(bpy.app.handlers, name), list)}


def test_register_and_unregister_twice_leave_nothing_behind():
    fresh_scene()
    before_types, before_handlers = stage_types(), handler_counts()
    before_threads = {t.ident for t in threading.enumerate()}
    for _ in range(2):
        enable_addon()
        assert hasattr(bpy.context.scene, "stage") and hasattr(bpy.context.window_manager, "stage_status")
        assert {f"STAGE_OT_{name}" for name in OPERATORS} <= stage_types()
        disable_addon()
        assert stage_types() == before_types
        assert not hasattr(bpy.types.Scene, "stage") and not hasattr(bpy.types.WindowManager, "stage_status")
        assert handler_counts() == before_handlers
        assert {t.ident for t in threading.enumerate()} == before_threads
    from blender_addon import runtime

    assert runtime.session.backend is None and runtime.session.status_client is None and not runtime.session.runners


def test_operators_have_their_ids_and_the_stage_tab_has_its_panels():
    fresh_scene()
    enable_addon()
    try:
        for name in OPERATORS:
            assert getattr(bpy.ops.stage, name).idname() == f"STAGE_OT_{name}"
        panels = {cls.bl_label for cls in bpy.types.Panel.__subclasses__()
                  if getattr(cls, "bl_category", "") == "Stage" and cls.bl_space_type == "VIEW_3D"}
        assert {"Backend", "Prompt & Model", "ControlNet Units", "Temporal", "Cards", "Shot"} <= panels
    finally:
        disable_addon()


def test_settings_live_on_the_scene_with_lists_of_units_and_loras():
    scene = fresh_scene()
    enable_addon()
    try:
        bpy.ops.stage.collection_add(target="controls")
        bpy.ops.stage.collection_add(target="controls")
        scene.stage.controls[1].type = "openpose"
        scene.stage.controls[1].end = 0.6
        bpy.ops.stage.collection_add(target="loras")
        scene.stage.loras[0].name = "ink"
        from blender_addon.properties import settings_dict

        plain = settings_dict(scene.stage)
        assert [u["type"] for u in plain["controls"]] == ["depth", "openpose"]
        assert plain["controls"][1]["end"] == pytest.approx(0.6)
        assert plain["loras"][0]["name"] == "ink"
        bpy.ops.stage.collection_remove(target="controls")
        assert len(scene.stage.controls) == 1
    finally:
        disable_addon()


def test_add_card_makes_a_card_of_the_takes_aspect_and_height(tmp_path):
    scene = fresh_scene()
    enable_addon()
    try:
        make_take(tmp_path / "take", 3, 32, 16, colour=lambda f: solid(32, 16, (200, 40, 40)),
                  alpha=lambda f: [[1.0] * 32] * 16)
        assert bpy.ops.stage.add_card(take_dir=str(tmp_path / "take"), character_height=1.0, depth_scale=0.1) == {"FINISHED"}
        card = bpy.context.view_layer.objects.active
        assert card["stage_card"] and card["stage_take"] == str((tmp_path / "take").resolve())
        assert card["stage_depth_scale"] == pytest.approx(0.1)
        xs = [v.co.x for v in card.data.vertices]
        zs = [v.co.z for v in card.data.vertices]
        assert max(zs) - min(zs) == pytest.approx(1.0, abs=1e-4)
        assert max(xs) - min(xs) == pytest.approx(2.0, abs=1e-4)  # 32x16 footage: twice as wide as tall
        assert card in list(scene.objects)
        with pytest.raises(RuntimeError, match="take.json"):
            bpy.ops.stage.add_card(take_dir=str(tmp_path), character_height=1.0)
    finally:
        disable_addon()


def datablock_names() -> dict[str, list[str]]:
    return {kind: sorted(b.name for b in getattr(bpy.data, kind))
            for kind in ("objects", "meshes", "materials", "images", "textures", "actions", "node_groups")}


def test_a_failing_add_card_leaves_the_scene_unchanged(tmp_path):
    scene = fresh_scene()
    enable_addon()
    try:
        take = make_take(tmp_path / "take", 3, 32, 16, colour=lambda f: solid(32, 16, (200, 40, 40)),
                         alpha=lambda f: [[1.0] * 32] * 16, depth=lambda f: [[2.0] * 32] * 16)
        # the matte's frames are read (for the feet) after the card's images and mesh are made:
        # a broken one fails Add Card half-way through
        take.path("alpha", 2).write_bytes(b"not a png at all")
        before, objects = datablock_names(), sorted(o.name for o in scene.objects)
        with pytest.raises(RuntimeError, match="Add Card"):
            bpy.ops.stage.add_card(take_dir=str(tmp_path / "take"), character_height=1.0)
        assert datablock_names() == before
        assert sorted(o.name for o in scene.objects) == objects
    finally:
        disable_addon()


def render_settings(scene):
    render, cycles = scene.render, scene.cycles
    return (render.resolution_x, render.resolution_y, render.resolution_percentage, render.engine, cycles.samples,
            cycles.use_denoising)


def test_set_up_shot_without_openimagedenoise_changes_nothing_and_says_why(monkeypatch):
    scene = fresh_scene()
    enable_addon()
    try:
        import sys

        before = render_settings(scene)
        # a Blender built without OpenImageDenoise (the official wheels have it: the probe's answer is replaced)
        monkeypatch.setattr(sys.modules[bpy.types.STAGE_OT_setup_shot.__module__], "oidn_available", lambda: False)
        with pytest.raises(RuntimeError, match="OpenImageDenoise.*nothing was changed"):
            bpy.ops.stage.setup_shot(resolution=(640, 360), samples=64)
        assert render_settings(scene) == before
        assert bpy.ops.stage.setup_shot(resolution=(640, 360), samples=64, denoise=False) == {"FINISHED"}
        assert render_settings(scene)[:2] == (640, 360) and not scene.cycles.use_denoising
    finally:
        disable_addon()


def test_set_up_shot_that_fails_half_way_puts_the_render_settings_back():
    scene = fresh_scene()
    enable_addon()
    try:
        camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
        scene.collection.objects.link(camera)
        scene.camera = camera
        target = bpy.data.objects.new("Target", None)
        scene.collection.objects.link(target)
        scene.stage.focus_card = target  # focus makes an empty; then the preset fails
        scene.stage.shot_preset = "DOLLY"
        scene.frame_start, scene.frame_end = 10, 10  # a one-frame dolly: refused after the settings changed
        before, objects = render_settings(scene), sorted(o.name for o in bpy.data.objects)
        with pytest.raises(RuntimeError, match="Set Up Shot: the dolly needs"):
            bpy.ops.stage.setup_shot(resolution=(640, 360), samples=64, denoise=False)
        assert render_settings(scene) == before
        assert sorted(o.name for o in bpy.data.objects) == objects  # the focus empty went too
        assert not camera.data.dof.use_dof and camera.data.dof.focus_object is None
    finally:
        disable_addon()


def test_the_cards_render_switch_stays_off_across_frames(tmp_path):
    scene = fresh_scene()
    enable_addon()
    try:
        make_take(tmp_path / "clip", 3, 32, 16, colour=lambda f: solid(32, 16, (200, 40, 40)))
        assert bpy.ops.stage.add_card(take_dir=str(tmp_path / "clip"), character_height=1.0) == {"FINISHED"}
        card = bpy.context.view_layer.objects.active
        assert card.name == "Card clip"
        assert bpy.ops.stage.card_render(name=card.name, render=False) == {"FINISHED"}
        for frame in (2, 3, 1):
            scene.frame_set(frame)
            assert card.hide_render, frame
        assert bpy.ops.stage.card_render(name=card.name, render=True) == {"FINISHED"}
        scene.frame_set(2)
        assert not card.hide_render
    finally:
        disable_addon()


def test_add_card_with_the_filmed_shadow_and_switching_it_per_card(tmp_path):
    import numpy as np
    from backend.ipc.imagefiles import png_bytes
    from backend.ipc.take import Layer, Take
    from blender_addon.scene.card_shadow import card_decal

    scene = fresh_scene()
    enable_addon()
    try:
        make_take(tmp_path / "plain", 2, 32, 16, colour=lambda f: solid(32, 16, (200, 40, 40)))
        take = make_take(tmp_path / "clip", 2, 32, 16, colour=lambda f: solid(32, 16, (200, 40, 40)))
        take.info.layers["shadow"] = Layer("png16")
        take.save_info()
        for frame in take.info.frames:
            take.write_file("shadow", frame, png_bytes(np.full((16, 32), 30000, np.uint16)))
        assert bpy.ops.stage.add_card(take_dir=str(tmp_path / "clip"), character_height=1.0,
                                      shadow="FILMED") == {"FINISHED"}
        card = bpy.context.view_layer.objects.active
        assert card_decal(card) is not None and not card.visible_shadow
        assert bpy.ops.stage.card_shadow(name=card.name, mode="BLENDER") == {"FINISHED"}
        assert card_decal(card) is None and card.visible_shadow
        assert bpy.ops.stage.card_shadow(name=card.name, mode="BOTH") == {"FINISHED"}
        assert card_decal(card) is not None and card.visible_shadow

        before = sorted(o.name for o in scene.objects)
        with pytest.raises(RuntimeError, match="no 'shadow' layer.*shadow=true"):
            bpy.ops.stage.add_card(take_dir=str(tmp_path / "plain"), character_height=1.0, shadow="FILMED")
        assert sorted(o.name for o in scene.objects) == before  # nothing half-made is left
    finally:
        disable_addon()
