"""The Stage sidebar: order, labels, and text that fits its default width (bpy cannot open a window, so
the layout code's rules are tested: registration order, labelled lists, wrapped status lines)."""

from __future__ import annotations

import bpy
from addon_fixtures import disable_addon, enable_addon, fresh_scene

from blender_addon.panels.text import LINE_CHARS, device_text, wrap
from blender_addon.scene.cards import card_name


def test_cards_is_the_first_panel_and_stylize_has_its_own():
    from blender_addon import panels

    panel_labels = [cls.bl_label for cls in panels.classes if issubclass(cls, bpy.types.Panel)]
    assert panel_labels[0] == "Cards"
    assert "Stylize an Object" in panel_labels


def test_long_status_messages_wrap_to_the_sidebar_width_and_keep_every_word():
    message = ("the backend at tcp://127.0.0.1:5555 did not answer 'ping' within 5.0 s; start it with dstage serve "
               "or press Start, then Connect")
    lines = wrap(message)
    assert len(lines) > 1 and all(len(line) <= LINE_CHARS for line in lines)
    assert " ".join(lines).split() == message.split()
    assert len(wrap("x " * 500, max_lines=3)) == 3 and wrap("x " * 500, max_lines=3)[-1].endswith("…")


def test_the_device_line_reads_as_words():
    assert device_text("cpu: x86_64") == "CPU (x86_64)"
    assert device_text("cuda: NVIDIA H200") == "CUDA (NVIDIA H200)"
    assert device_text("") == "unknown"


def test_cards_are_named_after_their_take_not_card_card(tmp_path):
    assert card_name(tmp_path / "takes" / "clip") == "Card clip"
    assert card_name(tmp_path / "garden" / "takes" / "card") == "Card garden"


def test_the_controlnet_list_spells_openpose_as_its_menu_does():
    scene = fresh_scene()
    enable_addon()
    try:
        unit = scene.stage.controls.add()
        unit.type = "openpose"
        name = unit.bl_rna.properties["type"].enum_items[unit.type].name
        assert name == "OpenPose"
    finally:
        disable_addon()
