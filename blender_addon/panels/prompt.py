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
        layout.prop(settings, "prompt")
        layout.prop(settings, "negative_prompt")
        layout.prop(settings, "checkpoint")
        layout.prop(settings, "engine")
        if settings.engine != "KEYFRAMES":
            layout.prop(settings, "video_size")
            layout.prop(settings, "character_image")
        if settings.engine == "ANIMATE":
            # Say where Animate's two inputs come from.
            if not settings.character_image:
                layout.label(text="Character: first diffused keyframe", icon="IMAGE_DATA")
            layout.label(text="Pose: OpenPose of the footage", icon="ARMATURE_DATA")
        layout.label(text="LoRAs:")
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


class STAGE_PT_stylize(StagePanel, bpy.types.Panel):
    """Diffuse one object of the rendered scene and composite it back over the render."""

    bl_label = "Stylize an Object"

    def draw(self, context):
        settings = context.scene.stage
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(settings, "stylize_object", text="Object")
        col = layout.column(align=True)
        col.prop(settings, "mask_grow", text="Grow")
        col.prop(settings, "mask_feather", text="Feather")
        layout.prop(settings, "blend_mode", text="Blend")
        layout.prop(settings, "blend_factor", text="Factor")
        layout.operator("stage.stylize_scene", icon="SHADING_RENDERED")
