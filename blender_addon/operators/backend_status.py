"""Waiting for the backend's answers without blocking Blender, and showing them in the Backend panel."""

from __future__ import annotations

import time

from .. import runtime
from ..ipc import Client
from ..preferences import client_keys, get_prefs


def open_status_client(context) -> Client:
    """A fresh connection to the preferences' address (the previous one is closed)."""
    prefs = get_prefs(context)
    if runtime.session.status_client is not None:
        runtime.session.status_client.close()
    client = Client(prefs.address, keys=client_keys(prefs), timeout_s=5.0)
    runtime.session.status_client = client
    return client


class StatusWait:
    """Sends `status` and collects the reply over later `poll()` calls."""

    def __init__(self, client: Client, timeout_s: float):
        self.client = client
        self.deadline = time.monotonic() + timeout_s
        self.req = client.send("status")
        self.reply: dict | None = None
        self.error: str | None = None

    def poll(self) -> bool:
        """True once answered, failed or timed out."""
        for msg in self.client.poll(0):
            if msg.get("req") == self.req and msg.type == "status":
                self.reply = msg.header
            elif msg.get("req") == self.req and msg.type == "error":
                self.error = f"{msg.get('code')}: {msg.get('message')}"
            elif msg.type == "reconnected":
                self.req = self.client.send("status")  # a new socket: ask again
        if self.reply is None and self.error is None and time.monotonic() > self.deadline:
            self.error = (f"no answer from {self.client.url}; is the backend running (Start Backend, or "
                          f"`dstage serve`) and is Backend Address right in the add-on's preferences?")
        return self.reply is not None or self.error is not None


def show_status(context, address: str, info: dict | None, message: str = "") -> None:
    status = context.window_manager.stage_status
    status.address = address
    status.connected = info is not None
    status.device = (info or {}).get("device", "")
    status.stages = ", ".join((info or {}).get("stages", []))
    # the server names only this connection's own job; it says `busy` for anyone's
    status.busy = (info or {}).get("running") or ("a job" if (info or {}).get("busy") else "")
    status.message = message
    if context.area is not None:
        context.area.tag_redraw()


def backend_stages(context) -> list[str] | None:
    """Stages of the connected backend, None when not connected (the backend then judges)."""
    status = context.window_manager.stage_status
    if not status.connected:
        return None
    return [s.strip() for s in status.stages.split(",") if s.strip()]
