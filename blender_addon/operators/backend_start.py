"""stage.backend_start: start a backend on this machine from the preferences, then wait (from a
timer, never blocking the interface) until it answers."""

from __future__ import annotations

import time
from pathlib import Path

import bpy

from .. import runtime
from ..jobs.local_backend import LaunchError, LocalBackend, backend_argv
from ..preferences import PreferencesError, get_prefs
from .backend_status import StatusWait, open_status_client, show_status

READY_TIMEOUT_S = 120.0   # the backend imports torch and friends before it listens


class STAGE_OT_backend_start(bpy.types.Operator):
    """Start a local backend with the command from the add-on's preferences"""

    bl_idname = "stage.backend_start"
    bl_label = "Start Backend"

    def _begin(self, context) -> bool:
        try:
            prefs = get_prefs(context)
            if runtime.session.backend is not None and runtime.session.backend.alive:
                raise LaunchError("a backend this Blender started is already running; connect to it")
            bind = prefs.address
            argv = backend_argv(bpy.path.abspath(prefs.backend_python), prefs.backend_args, bind=bind,
                                store=bpy.path.abspath(prefs.store_dir), device=prefs.device,
                                models=bpy.path.abspath(prefs.models_config) if prefs.models_config else "")
            log = Path(bpy.app.tempdir or "/tmp") / "diffusion_stage_backend.log"
            cwd = bpy.path.abspath(prefs.backend_cwd) if prefs.backend_cwd else None
            runtime.session.backend = LocalBackend(argv, log, cwd=cwd)
            self.wait = StatusWait(open_status_client(context), READY_TIMEOUT_S)
        except (LaunchError, PreferencesError, ValueError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return False
        show_status(context, bind, None, "starting the backend ...")
        return True

    def _poll(self) -> bool:
        backend = runtime.session.backend
        if backend is None or not backend.alive:
            tail = backend.log_tail() if backend is not None else ""
            self.wait.error = f"the backend exited while starting; its log ends:\n{tail}"
            return True
        return self.wait.poll()

    def _end(self, context) -> set[str]:
        if self.wait.reply is not None:
            show_status(context, self.wait.client.url, self.wait.reply)
            self.report({"INFO"}, f"backend started at {self.wait.client.url} ({self.wait.reply.get('device')})")
            return {"FINISHED"}
        if runtime.session.backend is not None:
            runtime.session.backend.stop()
            runtime.session.backend = None
        show_status(context, self.wait.client.url, None, self.wait.error)
        self.report({"ERROR"}, self.wait.error)
        return {"CANCELLED"}

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        if not self._begin(context):
            return {"CANCELLED"}
        self.timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER" or not self._poll():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self.timer)
        return self._end(context)

    def execute(self, context):
        if not self._begin(context):
            return {"CANCELLED"}
        while not self._poll():
            time.sleep(0.05)
        return self._end(context)
