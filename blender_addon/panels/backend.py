import bpy

from .base import StagePanel
from .text import device_text, labels


class STAGE_PT_backend(StagePanel, bpy.types.Panel):
    bl_label = "Backend"

    def draw(self, context):
        layout = self.layout
        status = context.window_manager.stage_status
        row = layout.row(align=True)
        row.operator("stage.backend_start", icon="PLAY", text="Start")
        row.operator("stage.backend_connect", icon="LINKED", text="Connect")
        row.operator("stage.backend_stop", icon="CANCEL", text="")
        col = layout.column(align=True)
        if status.connected:
            labels(col, f"Connected: {status.address}", icon="CHECKMARK")
            col.label(text=f"Device: {device_text(status.device)}")
            col.label(text=f"Busy with {status.busy}" if status.busy else "Idle")
            labels(col, f"Stages: {status.stages}")
        else:
            col.label(text="Not connected", icon="UNLINKED")
        if status.message:
            labels(col, status.message)
        if status.job_running:
            layout.progress(factor=status.job_progress, text=status.job_label)
            layout.label(text="Esc cancels", icon="CANCEL")
        elif status.job_label:
            layout.label(text=status.job_label)
