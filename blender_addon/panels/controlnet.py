import bpy

from .base import StagePanel


class STAGE_UL_controls(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=item.bl_rna.properties["type"].enum_items[item.type].name)  # "OpenPose", as in the menu
        row.prop(item, "weight", text="")


class STAGE_PT_controlnet(StagePanel, bpy.types.Panel):
    bl_label = "ControlNet Units"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.stage
        layout = self.layout
        layout.label(text="Units (conditions for the diffusion):")
        row = layout.row()
        row.template_list("STAGE_UL_controls", "", settings, "controls", settings, "control_index", rows=3)
        ops = row.column(align=True)
        ops.operator("stage.collection_add", icon="ADD", text="").target = "controls"
        ops.operator("stage.collection_remove", icon="REMOVE", text="").target = "controls"
        if 0 <= settings.control_index < len(settings.controls):
            unit = settings.controls[settings.control_index]
            col = layout.column(align=True)
            col.prop(unit, "type")
            col.prop(unit, "weight")
            col.prop(unit, "start")
            col.prop(unit, "end")
            col.prop(unit, "source")
        layout.operator("stage.render_passes", icon="RENDERLAYERS")
