import bpy

from .base import StagePanel


class STAGE_PT_shot(StagePanel, bpy.types.Panel):
    bl_label = "Shot"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.stage
        col = self.layout.column(align=True)
        col.prop(settings, "focus_card")
        col.prop(settings, "shot_preset")
        self.layout.operator("stage.setup_shot", icon="SCENE")
