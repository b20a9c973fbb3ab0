"""Add and remove rows of the LoRA and ControlNet lists."""

import bpy
from bpy.props import EnumProperty

TARGETS = [("loras", "LoRAs", ""), ("controls", "ControlNet units", "")]


class STAGE_OT_collection_add(bpy.types.Operator):
    """Add a row"""

    bl_idname = "stage.collection_add"
    bl_label = "Add"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}
    target: EnumProperty(items=TARGETS)

    def execute(self, context):
        settings = context.scene.stage
        getattr(settings, self.target).add()
        setattr(settings, _index(self.target), len(getattr(settings, self.target)) - 1)
        return {"FINISHED"}


class STAGE_OT_collection_remove(bpy.types.Operator):
    """Remove the selected row"""

    bl_idname = "stage.collection_remove"
    bl_label = "Remove"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}
    target: EnumProperty(items=TARGETS)

    def execute(self, context):
        settings = context.scene.stage
        items, index = getattr(settings, self.target), getattr(settings, _index(self.target))
        if not 0 <= index < len(items):
            self.report({"WARNING"}, "nothing selected to remove")
            return {"CANCELLED"}
        items.remove(index)
        setattr(settings, _index(self.target), max(0, index - 1))
        return {"FINISHED"}


def _index(target: str) -> str:
    return {"loras": "lora_index", "controls": "control_index"}[target]


classes = (STAGE_OT_collection_add, STAGE_OT_collection_remove)
