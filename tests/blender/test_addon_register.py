"""Registering the add-on in real bpy: twice in a row, nothing left behind; operators and panels present."""

from __future__ import annotations

import threading

import addon_fixtures  # noqa: F401  (puts the repository on sys.path)
import bpy
import pytest
from addon_fixtures import disable_addon, enable_addon, fresh_scene
from scene_fixtures import make_take, solid

OPERATORS = ("backend_start", "backend_stop", "backend_connect", "render_passes", "stylize_scene", "import_footage", "add_card",
             "setup_shot")


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
        assert bpy.ops.stage.add_card(take_dir=str(tmp_path / "take"), height=1.0, depth_scale=0.1) == {"FINISHED"}
        card = bpy.context.view_layer.objects.active
        assert card["stage_card"] and card["stage_take"] == str((tmp_path / "take").resolve())
        assert card["stage_depth_scale"] == pytest.approx(0.1)
        xs = [v.co.x for v in card.data.vertices]
        zs = [v.co.z for v in card.data.vertices]
        assert max(zs) - min(zs) == pytest.approx(1.0, abs=1e-4)
        assert max(xs) - min(xs) == pytest.approx(2.0, abs=1e-4)  # 32x16 footage: twice as wide as tall
        assert card in list(scene.objects)
        with pytest.raises(RuntimeError, match="take.json"):
            bpy.ops.stage.add_card(take_dir=str(tmp_path), height=1.0)
    finally:
        disable_addon()
