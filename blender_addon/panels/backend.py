import bpy

from .base import StagePanel


class STAGE_PT_backend(StagePanel, bpy.types.Panel):
    bl_label = "Backend"

    def draw(self, context):
        layout = self.layout
        status = context.window_manager.stage_status
        row = layout.row(align=True)
        row.operator("stage.backend_start", icon="PLAY")
        row.operator("stage.backend_connect", icon="LINKED")
        col = layout.column(align=True)
        if status.connected:
            col.label(text=f"Connected: {status.address}", icon="CHECKMARK")
            col.label(text=f"Device: {status.device}")
            col.label(text=f"Busy with {status.busy}" if status.busy else "Idle")
            col.label(text=f"Stages: {status.stages}")
        else:
            col.label(text="Not connected", icon="UNLINKED")
        if status.message:
            for line in status.message.splitlines()[:4]:
                col.label(text=line)
        if status.job_running:
            layout.progress(factor=status.job_progress, text=status.job_label)
            layout.label(text="Esc cancels", icon="CANCEL")
        elif status.job_label:
            layout.label(text=status.job_label)
