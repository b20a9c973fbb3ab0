import bpy

from .base import StagePanel


class STAGE_PT_temporal(StagePanel, bpy.types.Panel):
    bl_label = "Temporal"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.stage
        col = self.layout.column(align=True)
        col.prop(settings, "keyframe_mode")
        if settings.keyframe_mode == "INTERVAL":
            col.prop(settings, "keyframe_interval")
        col.prop(settings, "stability", slider=True)
