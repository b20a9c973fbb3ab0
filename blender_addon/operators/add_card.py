"""stage.add_card: a character card from a take folder, plus the Cards list's selection helpers."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from ..ipc import TakeError
from ..properties import CARD_SHADOWS
from ..scene.cards import CardError, make_card, set_card_rendered, set_card_shadow
from ..scene.restore import Rollback


class STAGE_OT_add_card(bpy.types.Operator):
    """Make a character card (lit, matte-cut, depth-displaced plane) from a take folder"""

    bl_idname = "stage.add_card"
    bl_label = "Add Card"
    bl_options = {"REGISTER", "UNDO"}

    take_dir: StringProperty(name="Take", subtype="DIR_PATH", description="folder with take.json, color/, alpha/, depth/")
    character_height: FloatProperty(name="Character height", default=1.8, min=0.001, unit="LENGTH",
                                    description="the character's height in metres (measured on the take's matte); "
                                                "the card's frame is sized to match")
    depth_scale: FloatProperty(name="Depth Scale", default=0.25, min=0.0, unit="LENGTH",
                               description="displacement between the depth range's ends, in metres")
    face_camera: BoolProperty(name="Face the camera", default=True,
                              description="keep the card turned to the active camera (a 'Face Camera' "
                                          "constraint you can switch off)")
    shadow: EnumProperty(name="Shadow", items=CARD_SHADOWS, default="BLENDER",
                         description="the card's shadow on the floor (Filmed, Both: the take's shadow layer)")
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})  # the file browser's answer

    def execute(self, context):
        self.take_dir = self.take_dir or self.directory
        if not self.take_dir:
            self.report({"ERROR"}, "choose a take folder (one with take.json)")
            return {"CANCELLED"}
        try:
            with Rollback():  # a failure half-way removes the half-made card, its images and material
                card = make_card(bpy.path.abspath(self.take_dir), character_height=self.character_height,
                                 depth_scale=self.depth_scale, scene=context.scene,
                                 track_camera=self.face_camera, shadow=self.shadow)
        except (CardError, TakeError, OSError, ValueError) as e:
            self.report({"ERROR"}, f"Add Card: {e}")
            return {"CANCELLED"}
        make_active(context, card)
        self.report({"INFO"}, f"added {card.name}")
        return {"FINISHED"}

    def invoke(self, context, event):
        if self.take_dir:
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}


class STAGE_OT_select_card(bpy.types.Operator):
    """Select this card and make it active"""

    bl_idname = "stage.select_card"
    bl_label = "Select Card"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()

    def execute(self, context):
        card = context.scene.objects.get(self.name)
        if card is None:
            self.report({"ERROR"}, f"no object {self.name!r} in this scene")
            return {"CANCELLED"}
        make_active(context, card)
        return {"FINISHED"}


class STAGE_OT_card_render(bpy.types.Operator):
    """Render this card or not (stays as set when the frame changes; its timing still applies when on)"""

    bl_idname = "stage.card_render"
    bl_label = "Render Card"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()
    render: BoolProperty(default=True)

    def execute(self, context):
        card = card_named(self, context)
        if card is None:
            return {"CANCELLED"}
        set_card_rendered(card, self.render)
        return {"FINISHED"}


class STAGE_OT_card_shadow(bpy.types.Operator):
    """The card's shadow: cast by Blender from the scene's lights, the filmed one on the floor, or both"""

    bl_idname = "stage.card_shadow"
    bl_label = "Card Shadow"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty()
    mode: EnumProperty(name="Shadow", items=CARD_SHADOWS, default="BLENDER")

    def execute(self, context):
        card = card_named(self, context)
        if card is None:
            return {"CANCELLED"}
        try:
            set_card_shadow(card, self.mode)
        except (CardError, TakeError, OSError) as e:
            self.report({"ERROR"}, f"Card Shadow: {e}")
            return {"CANCELLED"}
        return {"FINISHED"}


def make_active(context, card) -> None:
    """The card as the only selected object, and the active one."""
    for obj in context.view_layer.objects:
        obj.select_set(False)
    card.select_set(True)
    context.view_layer.objects.active = card


def card_named(operator, context):
    """The scene's card called `operator.name`, or None after reporting that there is none."""
    card = context.scene.objects.get(operator.name)
    if card is None or not card.get("stage_card"):
        operator.report({"ERROR"}, f"no card {operator.name!r} in this scene")
        return None
    return card


list_classes = (STAGE_OT_select_card, STAGE_OT_card_render, STAGE_OT_card_shadow)
