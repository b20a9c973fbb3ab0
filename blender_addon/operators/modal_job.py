"""The machinery shared by the long operators: a JobRunner drives a JobDriver from a window timer,
shows progress (status bar, window manager progress, `window_manager.stage_status`), cancels on ESC
and reports the outcome through the operator.

The runner is a plain object the operator owns, so scripts and tests can drive the same tick and ESC
handling without Blender's event loop (`JobRunner.on_event(context, "TIMER")`).
"""

from __future__ import annotations

import time

from .. import runtime
from ..jobs.driver import JobDriver

TICK_BUDGET_S = 0.01     # work per timer tick: the interface stays responsive
TIMER_INTERVAL_S = 0.02


class JobRunner:
    def __init__(self, driver: JobDriver, title: str, on_done=None):
        self.driver = driver
        self.title = title
        self.on_done = on_done          # called with (context) once the driver is done
        self.timer = None
        self.window_manager = None
        self.result: set[str] | None = None
        self.messages: list[tuple[str, str]] = []   # (level, text) for the operator's report
        self.last_tick_s = 0.0

    # -- lifetime ----------------------------------------------------------------------------
    def start(self, context, with_timer: bool = True) -> None:
        wm = context.window_manager
        self.window_manager = wm
        if with_timer and context.window is not None:
            self.timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
            wm.progress_begin(0, 1000)
        runtime.session.runners.append(self)
        self._show(context)

    def on_event(self, context, event_type: str) -> set[str]:
        """What the operator's `modal` returns for one event."""
        if event_type == "ESC" and self.driver.active:
            self.driver.cancel()
            self._show(context)
            return self._maybe_finish(context) or {"RUNNING_MODAL"}
        if event_type == "TIMER":
            start = time.perf_counter()
            self.driver.tick(TICK_BUDGET_S)
            self._show(context)
            self.last_tick_s = time.perf_counter() - start
            return self._maybe_finish(context) or {"RUNNING_MODAL"}
        return {"PASS_THROUGH"}

    def run_to_end(self, context) -> set[str]:
        """EXEC: the same work, synchronously (scripts, headless runs)."""
        self.start(context, with_timer=False)
        while self.driver.active:
            self.driver.tick(0.05)
            time.sleep(0.001)
        return self._maybe_finish(context)

    def abandon(self) -> None:
        """Unregister while running: cancel on the backend and let go of the socket and timer."""
        self.driver.cancel()
        self.driver.close()
        self._remove_timer()

    # -- internals ---------------------------------------------------------------------------
    def _maybe_finish(self, context) -> set[str] | None:
        if self.driver.active:
            return None
        self._remove_timer()
        if self in runtime.session.runners:
            runtime.session.runners.remove(self)
        state = self.driver.state
        if state == "done" and self.on_done is not None:
            try:
                self.on_done(context)
            except Exception as e:  # a take that arrived but could not be used is still the user's to know
                self.messages.append(("ERROR", f"{self.title}: the take is in {self.driver.take_dir} "
                                               f"but could not be used: {e}"))
                state = "failed"
        elif state == "failed":
            self.messages.append(("ERROR", f"{self.title} failed: {self.driver.error}"))
        elif state == "cancelled":
            self.messages.append(("WARNING", f"{self.title} cancelled; finished frames stay in {self.driver.take_dir}"))
        self._show(context, final=True)
        self.result = {"FINISHED"} if state == "done" else {"CANCELLED"}
        return self.result

    def _remove_timer(self) -> None:
        if self.timer is not None and self.window_manager is not None:
            self.window_manager.event_timer_remove(self.timer)
            self.window_manager.progress_end()
        self.timer = None

    def _show(self, context, final: bool = False) -> None:
        status = context.window_manager.stage_status
        status.job_running = not final
        status.job_progress = self.driver.fraction
        status.job_label = f"{self.title}: {self.driver.label}"
        if self.timer is not None:
            context.window_manager.progress_update(int(self.driver.fraction * 1000))
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(None if final else f"{status.job_label} ({self.driver.fraction:.0%}) - Esc cancels")
        if context.area is not None:
            context.area.tag_redraw()


class JobOperator:
    """Mixin for an operator whose work is a JobDriver: subclasses define `make_runner(context)`,
    which returns a JobRunner or raises an error whose message is for the user."""

    user_errors: tuple[type[Exception], ...] = (ValueError, RuntimeError, OSError)

    def _runner(self, context) -> JobRunner | None:
        try:
            return self.make_runner(context)
        except self.user_errors as e:
            self.report({"ERROR"}, str(e))
            return None

    def invoke(self, context, event):
        if context.window is None:  # no window (background or bpy module): run synchronously
            return self.execute(context)
        self.runner = self._runner(context)
        if self.runner is None:
            return {"CANCELLED"}
        self.runner.start(context)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        result = self.runner.on_event(context, event.type)
        self._report_messages()
        return result

    def execute(self, context):
        self.runner = self._runner(context)
        if self.runner is None:
            return {"CANCELLED"}
        result = self.runner.run_to_end(context)
        self._report_messages()
        return result

    def cancel(self, context):  # Blender closes the window or file while the job runs
        self.runner.abandon()

    def _report_messages(self) -> None:
        for level, text in self.runner.messages:
            self.report({level}, text)
        self.runner.messages.clear()
