"""The client side of the wire: a DEALER socket with a non-blocking poll, heartbeats and reconnect.

Blender drives it from a timer (`poll(0)` returns at once with whatever arrived); the command line
drives it in a loop. When the server falls silent for `timeout_s` the client drops its socket, opens a
new one and says so with a local "reconnected" event, so the job driving it can resubmit and resume.

To a server on this machine (loopback TCP or ipc, no CURVE keys) the hello offers shared memory
(backend/ipc/shm.py); big arrays go through it once the welcome proves the server read our arena, and
inline otherwise. Arrays received through it are read-only views.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from backend.ipc import shm, wire
from backend.ipc.auth import apply_client_keys

# errors that mean the server no longer holds our shared memory: renegotiate, and the job resubmits
SHM_LOST = frozenset({"shm_unavailable", "shm_unknown_arena"})
SEND_TIMEOUT_MS = 1000


class RemoteError(RuntimeError):
    """An error event from the server, raised by the blocking `request`."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class ClientKeys:
    client_secret: Path   # this client's `<name>.key_secret`
    server_public: Path   # the server's `server.key`


class Client:
    def __init__(self, url: str, *, keys: ClientKeys | None = None, timeout_s: float = 5.0,
                 heartbeat_s: float = 1.0, context: zmq.Context | None = None, shm_enabled: bool = True):
        self.url = url
        self.shm_allowed = shm_enabled and keys is None and shm.is_local(url) and shm.available()
        self.outbox: shm.Outbox | None = None   # ours, once the server proved it reads it
        self.inbox: shm.Inbox | None = None     # the server's
        self.shm_status = "off"
        self.keys = keys
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self.ctx = context or zmq.Context.instance()
        self.server_info: dict = {}
        self.max_message_bytes = wire.MAX_MESSAGE_BYTES
        self.reconnects = 0
        self.heard = 0    # messages received from the server, ever (a reconnect does not reset it)
        self.session: str | None = None   # the server process we talk to; a new value means it restarted
        self._ids = itertools.count(1)
        self.socket: zmq.Socket | None = None
        try:
            self._connect()
        except BaseException:
            self.close()  # a refused hello must not leave its socket or its offered arena in /dev/shm behind
            raise

    def _connect(self, offer: bool = True) -> None:
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.sndhwm = self.socket.rcvhwm = 1000
        # a send never blocks for long: with no usable connection (a refused CURVE handshake drops it) a
        # plain send would wait forever, and Blender's timer with it
        self.socket.sndtimeo = SEND_TIMEOUT_MS
        # what decode would refuse anyway is not even received: a hostile server cannot fill our memory
        self.socket.maxmsgsize = wire.MAX_MESSAGE_BYTES
        if self.keys is not None:
            apply_client_keys(self.socket, self.keys.client_secret, self.keys.server_public)
        self.socket.connect(self.url)
        now = time.monotonic()
        self.last_heard = now
        self.last_sent = 0.0
        self.connected = False
        self._hello(offer)

    def _hello(self, offer: bool = True) -> None:
        """Say hello, offering a fresh shared-memory arena if this connection may use one. After the server
        fell silent the hello offers none (an arena it never attaches would stay in /dev/shm if this process
        is killed meanwhile); the offer follows once it answers."""
        self._drop_shm()
        self._offer = None
        if self.shm_allowed and offer:
            try:
                self._offer = shm.Outbox()
            except OSError as e:
                self.shm_status = f"off: cannot create shared memory ({e})"
        self.hello_req = self.send("hello", {"shm": self._offer.offer()} if self._offer else None)

    def _drop_shm(self) -> None:
        for box in (self.outbox, getattr(self, "_offer", None)):
            if box is not None:
                box.close()
        self.outbox = self._offer = self.inbox = None

    def _welcome(self, msg: wire.Message) -> None:
        self.connected = True
        self.server_info = msg.header
        limit = msg.get("max_message_bytes")
        if type(limit) is int and limit > 0:
            self.max_message_bytes = limit
        if msg.get("req") != self.hello_req:
            return
        if self._offer is None:
            if self.shm_allowed and self.outbox is None and "shm" not in msg.header:
                self._hello()  # the server is back: now offer the arena
            return
        offer, self._offer = self._offer, None
        answer = msg.get("shm")
        if not isinstance(answer, dict) or not answer.get("ok") or answer.get("proof") != offer.token.hex():
            reason = answer.get("reason") if isinstance(answer, dict) else "the server does not offer it"
            self.shm_status = f"off: {reason}"
            offer.close()
            return
        self.outbox = offer
        try:
            self.inbox = shm.Inbox(answer.get("offer"))
            self.shm_status = "on"
        except wire.WireError as e:  # then only our sends use it; the server waits for us to attach
            self.shm_status = f"sending only: {e}"

    def _renegotiated(self, msg: wire.Message) -> bool:
        """Say hello again when `msg` says the server dropped our shared memory (we were silent too long)."""
        if msg.type != "error" or msg.get("code") not in SHM_LOST or self.outbox is None:
            return False
        self._hello()
        return True

    @property
    def silent_for(self) -> float:
        return time.monotonic() - self.last_heard

    def send(self, type: str, fields: dict | None = None, arrays: dict | None = None) -> int:
        """Queue one request; returns its request id (`req`), echoed by the server's reply."""
        req = next(self._ids)
        frames = wire.encode(type, {"req": req, **(fields or {})}, arrays, shm=self.outbox)
        try:
            size = sum(len(f) if isinstance(f, bytes) else f.nbytes for f in frames)
            size += frames.shared_bytes
            if size > self.max_message_bytes:
                raise wire.WireError(
                    "too_large", f"{type} message of {size} bytes is over the server's limit of {self.max_message_bytes}"
                )
            self.socket.send_multipart(frames, copy=False)
        except zmq.Again:
            for slot in frames.slots:
                self.outbox.release(slot)
            raise TimeoutError(f"could not send {type!r} to {self.url}: no connection takes it (the backend refused "
                               "this client's key, or is not reading); check the address and the key files") from None
        except BaseException:
            for slot in frames.slots:
                self.outbox.release(slot)
            raise
        self.last_sent = time.monotonic()
        return req

    def poll(self, timeout_ms: int = 0) -> list[wire.Message]:
        """Everything that has arrived (waiting up to `timeout_ms` for the first); never blocks longer."""
        out = []
        if self.socket.poll(timeout_ms, zmq.POLLIN):
            while True:
                try:
                    parts = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self.last_heard = time.monotonic()
                self.heard += 1
                try:
                    msg = wire.decode(parts, accept=wire.EVENTS, shm=self.inbox)
                except wire.WireError as e:
                    # a protocol mismatch, not a passing fault: whoever waits on this must hear of it
                    msg = wire.Message("error", {"code": "bad_message_from_server", "message": f"{e.code}: {e}"})
                if msg.type == "welcome":
                    self._welcome(msg)
                self.connected = True
                if self._restarted(msg.get("session")):
                    # same address, new process: whatever we had in flight there is gone
                    if not (msg.type == "welcome" and msg.get("req") == self.hello_req):
                        self._hello()  # (unless this is the answer to the hello we just sent it)
                    out.append(wire.Message("reconnected", {"url": self.url, "reason": "server restarted"}))
                if self._renegotiated(msg):
                    # the request is lost, like after a restart: the job resubmits
                    out.append(wire.Message("reconnected", {"url": self.url, "reason": msg.get("message")}))
                    continue
                if msg.type != "heartbeat":
                    out.append(msg)
                if len(out) >= 256:
                    break
        now = time.monotonic()
        if now - self.last_heard > self.timeout_s:
            self.reconnect()
            out.append(wire.Message("reconnected", {"url": self.url, "attempt": self.reconnects}))
        elif now - self.last_sent > self.heartbeat_s:
            try:
                self.send("heartbeat")
            except TimeoutError:
                pass  # no connection takes it; the silence above ends in a reconnect
        return out

    def _restarted(self, session: str | None) -> bool:
        if not session or session == self.session:
            return False
        known, self.session = self.session, session
        return known is not None

    def reconnect(self) -> None:
        """Drop the socket (and whatever it queued) and start again; the caller resubmits its jobs."""
        self.socket.close(linger=0)
        self.reconnects += 1
        self._connect(offer=False)

    def request(self, type: str, fields: dict | None = None, arrays: dict | None = None,
                timeout_s: float | None = None) -> wire.Message:
        """Send and wait for the reply to this request (blocking; for the command line and tests)."""
        req = self.send(type, fields, arrays)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {type!r} from {self.url} within {timeout_s or self.timeout_s:.1f} s; "
                                   "is the backend running (`dstage serve`) and the address right?")
            if not self.socket.poll(int(left * 1000) + 1, zmq.POLLIN):
                continue
            try:
                parts = self.socket.recv_multipart(copy=False)
            except zmq.Again:
                continue
            self.last_heard = time.monotonic()
            self.heard += 1
            msg = wire.decode(parts, accept=wire.EVENTS, shm=self.inbox)
            if msg.type == "welcome":
                self._welcome(msg)
            if msg.get("req") == req:
                self._renegotiated(msg)  # for the next request; this one failed
                if msg.type == "error":
                    raise RemoteError(msg.get("code", "error"), msg.get("message", ""))
                return msg

    def close(self) -> None:
        self._drop_shm()
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
