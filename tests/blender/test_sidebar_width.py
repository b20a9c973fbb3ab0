"""Nothing in the Stage sidebar is cut at its default width (291 px at UI scale 1).

The bpy module cannot open a window, so each panel's real draw() runs against a layout that records
what it is asked to draw (rows, columns, props, operators, labels) instead of drawing it; every text is
then measured with Blender's own font (blf) against the room its row gives it. The room follows how
Blender lays out a sidebar: items of a row share its width; a field with its label beside it (text,
menu, object, number field) leaves the label about 40% of its slot; a button or toggle shows its
whole slot's text.
"""

from __future__ import annotations

import bpy  # first: blf is part of the bpy module
import blf  # noqa: I001
from addon_fixtures import disable_addon, enable_addon, fresh_scene

SIDEBAR = 291
CONTENT = SIDEBAR - 2 * 14  # the region's and panel's margins
ICON = 20
PADDING = 10  # inside a button or field
LABEL_SHARE = 0.4


class Recorder:
    """A stand-in for bpy.types.UILayout that keeps a tree of what draw() asked for."""

    def __init__(self, horizontal=False):
        self.horizontal, self.children = horizontal, []
        self.use_property_split = self.use_property_decorate = self.enabled = self.active = False
        self.alert = False
        self.scale_y = 1.0

    def _child(self, horizontal):
        child = Recorder(horizontal)
        self.children.append(child)
        return child

    def row(self, **_):
        return self._child(True)

    def split(self, **_):
        return self._child(True)

    def column(self, **_):
        return self._child(False)

    def box(self):
        return self._child(False)

    def column_flow(self, **_):
        return self._child(False)

    def prop(self, data, name, text=None, icon="NONE", icon_only=False, toggle=False, emboss=True, **_):
        rna = data.bl_rna.properties[name] if name in data.bl_rna.properties else None
        label = text if text is not None else (rna.name if rna is not None else name)
        kind = rna.type if rna is not None else "STRING"
        if icon_only or label == "":
            label = ""
        if kind == "BOOLEAN":
            need = ("button", label) if toggle else ("check", label)
        else:
            need = ("field", label)
        self.children.append((*need, icon != "NONE"))

    def operator(self, idname, text=None, icon="NONE", **_):
        module, name = idname.split(".")
        label = text if text is not None else getattr(getattr(bpy.ops, module), name).get_rna_type().name
        self.children.append(("button", label, icon != "NONE"))
        return type("Props", (), {})()

    def label(self, text="", icon="NONE", **_):
        self.children.append(("label", text, icon != "NONE"))

    def separator(self, **_):
        pass

    def template_list(self, *args, **_):
        pass

    def progress(self, **_):
        pass


def text_width(text: str) -> float:
    return blf.dimensions(0, text)[0]


def cut_texts(node, width) -> list[str]:
    """The texts that would not fit, with the room they had."""
    if isinstance(node, tuple):
        kind, text, icon = node
        if not text:
            return []
        room = width - PADDING - (ICON if icon else 0)
        if kind == "field":
            room = width * LABEL_SHARE
        elif kind == "check":
            room = width - ICON
        return [] if text_width(text) <= room else [f"{text!r} ({text_width(text):.0f} px in {room:.0f} px)"]
    slots = [c for c in node.children if not (isinstance(c, Recorder) and not c.children)]
    share = width / max(1, len(slots)) if node.horizontal else width
    return [cut for child in slots for cut in cut_texts(child, share)]


def filmed_shadow_card(root):
    import numpy as np
    from backend.ipc.imagefiles import png_bytes
    from backend.ipc.take import Layer, Take
    from blender_addon.scene.cards import make_card
    from scene_fixtures import make_take, solid

    take = make_take(root / "take", 1, 16, 16, colour=lambda f: solid(16, 16, (99, 99, 99)))
    take.info.layers["shadow"] = Layer("png16")
    take.save_info()
    take.write_file("shadow", 1, png_bytes(np.zeros((16, 16), np.uint16)))
    return make_card(root / "take", shadow="FILMED", name="Card Ana")  # the name shares its row with Lit


def test_every_panel_fits_the_default_sidebar_width(tmp_path):
    scene = fresh_scene()
    enable_addon()
    try:
        from blender_addon import panels

        blf.size(0, 11)  # Blender's UI font size at UI scale 1
        status = bpy.context.window_manager.stage_status
        status.connected, status.address, status.device = True, "tcp://127.0.0.1:5555", "cpu: x86_64"
        status.stages = "diffuse, propagate, matte, depth, normal, albedo, upscale, pose"
        status.message = ("no answer to 'ping' from tcp://192.168.10.20:5555 within 5.0 s; start the backend "
                          "or check the address")
        scene.stage.controls.add()
        filmed_shadow_card(tmp_path)  # its row: whose shadow (three buttons) and the filmed one's strength
        scene.stage.engine = "ANIMATE"  # its rows (Video size, where the character and pose come from) drawn too
        cuts = {}
        for cls in panels.classes:
            if not issubclass(cls, bpy.types.Panel):
                continue
            layout = Recorder()
            cls.draw(type("Panel", (), {"layout": layout})(), bpy.context)
            cuts[cls.bl_label] = cut_texts(layout, CONTENT)
        assert not any(cuts.values()), {k: v for k, v in cuts.items() if v}
    finally:
        disable_addon()
