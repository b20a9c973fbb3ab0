import bpy

from .base import StagePanel


class STAGE_UL_loras(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.prop(item, "name", text="", emboss=False)
        row.prop(item, "strength", text="")


class STAGE_PT_prompt(StagePanel, bpy.types.Panel):
    bl_label = "Prompt & Model"

    def draw(self, context):
        settings = context.scene.stage
        layout = self.layout
        layout.prop(settings, "prompt", text="")
        layout.prop(settings, "negative_prompt")
        layout.prop(settings, "checkpoint")
        layout.prop(settings, "engine")
        if settings.engine != "KEYFRAMES":
            layout.prop(settings, "video_size")
        row = layout.row()
        row.template_list("STAGE_UL_loras", "", settings, "loras", settings, "lora_index", rows=2)
        ops = row.column(align=True)
        ops.operator("stage.collection_add", icon="ADD", text="").target = "loras"
        ops.operator("stage.collection_remove", icon="REMOVE", text="").target = "loras"
        col = layout.column(align=True)
        col.prop(settings, "sampler")
        col.prop(settings, "seed")
        col.prop(settings, "steps")
        col.prop(settings, "cfg")
        col.prop(settings, "denoise")
        box = layout.box()
        box.prop(settings, "stylize_object")
        row = box.row(align=True)
        row.prop(settings, "mask_grow")
        row.prop(settings, "mask_feather")
        row = box.row(align=True)
        row.prop(settings, "blend_mode", text="")
        row.prop(settings, "blend_factor")
        box.operator("stage.stylize_scene", icon="SHADING_RENDERED")
