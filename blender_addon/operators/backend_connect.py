"""stage.backend_connect: ask the backend for its status (device, stages, what it is busy with)."""

from __future__ import annotations

import time

import bpy

from ..preferences import PreferencesError
from .backend_status import StatusWait, open_status_client, show_status

TIMEOUT_S = 5.0


class STAGE_OT_backend_connect(bpy.types.Operator):
    """Connect to the backend at the preferences' address and show its status"""

    bl_idname = "stage.backend_connect"
    bl_label = "Connect to Backend"

    def _begin(self, context) -> bool:
        try:
            self.wait = StatusWait(open_status_client(context), TIMEOUT_S)
        except (PreferencesError, ValueError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return False
        show_status(context, self.wait.client.url, None, "connecting ...")
        return True

    def _end(self, context) -> set[str]:
        if self.wait.reply is not None:
            show_status(context, self.wait.client.url, self.wait.reply)
            self.report({"INFO"}, f"backend at {self.wait.client.url}: {self.wait.reply.get('device')}")
            return {"FINISHED"}
        show_status(context, self.wait.client.url, None, self.wait.error)
        self.report({"ERROR"}, self.wait.error)
        return {"CANCELLED"}

    def invoke(self, context, event):
        if context.window is None or not self._begin(context):
            return self.execute(context) if context.window is None else {"CANCELLED"}
        self.timer = context.window_manager.event_timer_add(0.05, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or not self.wait.poll():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self.timer)
        return self._end(context)

    def execute(self, context):
        if not self._begin(context):
            return {"CANCELLED"}
        while not self.wait.poll():
            time.sleep(0.01)
        return self._end(context)
