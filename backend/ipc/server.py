"""The backend's ZeroMQ server: a ROUTER that many clients talk to while one job at a time runs.

One thread owns the socket: it validates every message, answers pings and status at once, keeps each
client's queue of jobs and hands the next one (round robin across clients, so nobody waits behind
another's long list) to a single worker thread, whose events come back over an inproc socket. Errors
are values on the wire; a bad message never stops the loop. What a job *is* lives in the service
object passed in (backend/service.py), so this module stays free of torch and diffusers. Clients on this
machine that offer shared memory in their hello get big arrays through it (backend/ipc/shm.py).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import zmq

from backend.ipc import shm, wire
from backend.ipc.auth import AuthError, ServerKeys, answer_zap, is_loopback
from backend.ipc.redact import redact

log = logging.getLogger("dstage.server")

HEARTBEAT_S = 1.0
CLIENT_TIMEOUT_S = 10.0
# A client silent this long loses its shared memory here (a client forgotten after CLIENT_TIMEOUT_S, say
# Blender busy rendering, keeps it and carries on); it renegotiates if it comes back later.
SHM_GRACE_S = 600.0
# Messages queued for one client before further ones to it are dropped (a client that stops reading must
# not grow the server's memory: at most this many replies, the biggest a fetched frame's files).
SEND_HWM = 64
# Jobs one client may have submitted and not yet given all their inputs; more are refused until some run.
MAX_PENDING = 32
# Jobs a client keeps access to (status, fetch, cancel); the oldest are forgotten beyond it.
MAX_OWNED = 4096
# On SIGTERM, how long the running job may take to reach its next step and stop before it is abandoned.
STOP_GRACE_S = 10.0
# `req` is echoed in replies: only a small integer or a short text, anything else is answered without it.
MAX_REQ_TEXT = 64


class RequestError(Exception):
    """A request the service refuses; `code` and the message go back to the client."""

    def __init__(self, code: str, message: str, **ids: Any):
        super().__init__(message)
        self.code = code
        self.ids = ids


class JobService(Protocol):
    def describe(self) -> dict: ...
    def stages(self) -> list[dict]: ...
    def submit(self, fields: dict) -> dict: ...          # {job_id, take, done, need}
    def put_input(self, job_id: str, frame: int, digest: str, arrays: dict) -> None: ...
    def missing_inputs(self, job_id: str) -> list[int]: ...
    def done_frames(self, job_id: str) -> list[int]: ...
    def is_complete(self, job_id: str) -> bool: ...
    def read_result(self, job_id: str, frame: int) -> dict[str, bytes]: ...
    def run(self, job_id: str, on_frame, on_progress, is_cancelled) -> None: ...


@dataclass
class ClientState:
    last_seen: float
    owner: bytes
    jobs: set[str] = field(default_factory=set)


def owner_of(identity: bytes, parts: list) -> bytes:
    """Who a message comes from: its CURVE public key (the ZAP handler's User-Id), which stays the same across
    reconnects, or without keys the connection's routing id (libzmq makes it; a peer cannot claim another's)."""
    try:
        user = parts[0].get("User-Id") if parts and hasattr(parts[0], "get") else None
    except zmq.ZMQError:
        user = None
    return b"key:" + user.encode() if user else b"conn:" + identity


def safe_req(req: Any) -> Any:
    """The request id to echo back, or None when it is not a plain small integer or short text."""
    if type(req) is int and -(1 << 53) <= req <= (1 << 53):
        return req
    if isinstance(req, str) and len(req) <= MAX_REQ_TEXT:
        return req
    return None


@dataclass
class ShmPeer:
    """One client's shared memory: its arena we read, ours it reads (once it has attached it)."""
    inbox: shm.Inbox
    outbox: shm.Outbox
    since: float
    last_seen: float

    def close(self) -> None:
        self.outbox.close()  # our mapping and name; the client's views stay valid in its own mapping


class Server:
    def __init__(self, service: JobService, bind: str = "tcp://127.0.0.1:5555", *, keys_dir=None,
                 max_message_bytes: int = wire.MAX_MESSAGE_BYTES, heartbeat_s: float = HEARTBEAT_S,
                 client_timeout_s: float = CLIENT_TIMEOUT_S, context: zmq.Context | None = None,
                 shm_enabled: bool | None = None, stop_grace_s: float = STOP_GRACE_S):
        if not is_loopback(bind) and keys_dir is None:
            raise AuthError(
                f"refusing to listen on {bind} without CURVE keys: anyone on the network could use this GPU. "
                "Create keys with `dstage keys --out KEYS` and start with `--keys KEYS`, or bind tcp://127.0.0.1"
            )
        self.service = service
        self.stop_grace_s = stop_grace_s
        self.abandoned = False
        self.session = uuid.uuid4().hex  # a new one per process: clients learn of a restart from it
        self.max_message_bytes = max_message_bytes
        self.heartbeat_s = heartbeat_s
        self.client_timeout_s = client_timeout_s
        # Same-machine clients only, never with CURVE keys (a remote bind, or a loopback port that may be
        # forwarded from elsewhere); the hello's probe decides per client.
        self.shm_enabled = ((shm.available() if shm_enabled is None else shm_enabled) and keys_dir is None
                            and shm.is_local(bind))
        self.peers: dict[bytes, ShmPeer] = {}
        self.ctx = context or zmq.Context.instance()
        self.auth = None
        self.socket = self.ctx.socket(zmq.ROUTER)
        self.socket.linger = 0
        self.socket.router_mandatory = True    # a send to a vanished client raises instead of vanishing
        self.socket.maxmsgsize = max_message_bytes  # libzmq drops a peer that sends a bigger frame
        self.socket.sndhwm = SEND_HWM
        self.socket.rcvhwm = 1000
        self.keys = None
        if keys_dir is not None:
            self.keys = ServerKeys(keys_dir)
            self.auth = self.keys.authenticator(self.ctx)
            self.keys.apply(self.socket)
        if bind.startswith("tcp://") and bind.endswith(":0"):
            port = self.socket.bind_to_random_port(bind.rsplit(":", 1)[0])
            bind = f"{bind.rsplit(':', 1)[0]}:{port}"
        else:
            self.socket.bind(bind)
        self.url = bind
        self.events = self.ctx.socket(zmq.PULL)
        self.events.linger = 0
        self._events_url = f"inproc://dstage-events-{id(self)}"
        self.events.bind(self._events_url)
        self.clients: dict[bytes, ClientState] = {}
        self.owned: dict[bytes, dict[str, None]] = {}     # owner -> its jobs, oldest first
        self.pending: dict[bytes, dict[str, None]] = {}   # owner -> jobs still waiting for inputs
        self.forgotten: dict[bytes, float] = {}            # silent clients' identities -> since when
        self.store_root = getattr(getattr(service, "store", None), "root", None)  # for redacted messages
        self.queues: dict[bytes, deque[str]] = {}
        self.last_served: dict[bytes, float] = {}
        self.subscribers: dict[str, set[bytes]] = {}
        self.running: str | None = None
        self.progress: dict[str, Any] = {}
        self.cancel_flags: dict[str, threading.Event] = {}
        self._work: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._worker_loop, name="dstage-worker", daemon=True)
        self._stop = threading.Event()

    # -- main loop ---------------------------------------------------------------------------
    def serve_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        self._worker.start()
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.events, zmq.POLLIN)
        if self.auth is not None:
            poller.register(self.auth.zap_socket, zmq.POLLIN)
        next_beat = time.monotonic()
        try:
            while not stop.is_set():
                ready = dict(poller.poll(timeout=100))
                if self.auth is not None and self.auth.zap_socket in ready:
                    answer_zap(self.auth)
                if self.events in ready:
                    self._drain_events()
                if self.socket in ready:
                    for _ in range(100):  # bounded, so worker events and heartbeats are not starved
                        try:
                            parts = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(parts[0].bytes, parts[1:])
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.heartbeat_s
                self._dispatch()
        finally:
            self._stop_worker()
            self.close()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler): the running job stops at its next step."""
        self._stop.set()

    def _stop_worker(self) -> None:
        for flag in self.cancel_flags.values():
            flag.set()
        self._work.put(None)
        if self._worker.is_alive():
            self._worker.join(self.stop_grace_s)
        self.abandoned = self._worker.is_alive()  # a step longer than the grace: the caller exits without it

    def close(self) -> None:
        for peer in self.peers.values():
            peer.close()
        self.peers.clear()
        for sock in (self.socket, self.events):
            sock.close(linger=0)
        if self.auth is not None:
            self.auth.stop()

    # -- requests ----------------------------------------------------------------------------
    def _handle(self, identity: bytes, parts: list) -> None:
        state = self.clients.get(identity)
        if state is None:
            state = self.clients[identity] = ClientState(time.monotonic(), owner_of(identity, parts))
            self.forgotten.pop(identity, None)
        state.last_seen = time.monotonic()
        peer = self.peers.get(identity)
        if peer is not None:
            peer.last_seen = state.last_seen
        req = None
        try:
            msg = wire.decode(parts, accept=wire.REQUESTS, max_message_bytes=self.max_message_bytes,
                              shm=peer.inbox if peer is not None else None)
            req = safe_req(msg.get("req"))
            getattr(self, f"_on_{msg.type}")(identity, msg, req)
        except wire.WireError as e:
            self._error(identity, e.code, str(e), req)
        except RequestError as e:
            self._error(identity, e.code, str(e), req, **e.ids)
        except Exception as e:  # a bug in one request must not take the server down
            log.exception("request failed")
            self._error(identity, "internal", f"{type(e).__name__}: {e}", req)

    def _error(self, identity: bytes, code: str, message: str, req, **ids) -> None:
        """An error reply built only from values this server controls or checked: no unvalidated field."""
        ids = {k: v for k, v in ids.items() if v is None or type(v) is int or (isinstance(v, str) and len(v) <= 128)}
        try:
            frames = wire.error_frames(str(code)[:64], redact(str(message), self.store_root)[:2000], req=req, **ids)
        except Exception:  # never expected; the reply must not be what ends the loop
            frames = wire.error_frames("internal", "the server could not describe this error", req=req)
        self._send(identity, frames)

    def _owner(self, identity: bytes) -> bytes:
        state = self.clients.get(identity)  # (gone when a send to it failed earlier in this request)
        return state.owner if state is not None else b"conn:" + identity

    def _owns(self, identity: bytes, job_id: str) -> bool:
        return job_id in self.owned.get(self._owner(identity), ())

    def _check_owner(self, identity: bytes, job_id: Any) -> str:
        """The job id when this client submitted it; others' jobs answer exactly like jobs that do not exist."""
        if not isinstance(job_id, str):
            raise RequestError("bad_request", "this request needs job_id (text), as the 'accepted' reply gave it")
        if not self._owns(identity, job_id):
            raise RequestError("unknown_job", f"no job {job_id[:80]} was submitted by this client; submit it first")
        return job_id

    def _reply(self, identity: bytes, type: str, req, fields: dict | None = None, arrays=None) -> None:
        peer = self.peers.get(identity)
        outbox = peer.outbox if peer is not None and arrays and peer.outbox.attached else None
        self._send(identity, wire.encode(type, {"req": req, **(fields or {})}, arrays, shm=outbox))

    def _on_hello(self, identity, msg, req):
        self._reply(identity, "welcome", req, {**self.service.describe(), "protocol": wire.PROTOCOL_VERSION,
                                               "max_message_bytes": self.max_message_bytes,
                                               "session": self.session, **self._negotiate_shm(identity, msg)})

    def _negotiate_shm(self, identity: bytes, msg) -> dict:
        """The hello's `shm` offer names the client's arena and the token in it: reading that token back
        proves we see the same /dev/shm. The welcome returns it as `proof`, with our own arena's offer."""
        offer = msg.get("shm")
        if offer is None:
            return {}
        old = self.peers.pop(identity, None)
        if old is not None:
            old.close()
        if not self.shm_enabled:
            return {"shm": {"ok": False, "code": "shm_disabled", "reason": "this server does not use shared memory"}}
        try:
            inbox = shm.Inbox(offer)
        except wire.WireError as e:
            return {"shm": {"ok": False, "code": e.code, "reason": str(e)}}
        try:
            outbox = shm.Outbox()
        except OSError as e:
            return {"shm": {"ok": False, "code": "shm_unavailable", "reason": f"cannot create shared memory: {e}"}}
        now = time.monotonic()
        self.peers[identity] = ShmPeer(inbox, outbox, now, now)
        return {"shm": {"ok": True, "proof": offer["token"], "offer": outbox.offer()}}

    def _on_ping(self, identity, msg, req):
        self._reply(identity, "pong", req, {"time": time.time()})

    def _on_heartbeat(self, identity, msg, req):
        pass  # being heard from is the point; the server beats back on its own timer

    def _on_status(self, identity, msg, req):
        # another client's jobs are not this one's business: only that the backend is busy, and how long the queue is
        queued = [job for q in self.queues.values() for job in q]
        mine = self.running if self.running is not None and self._owns(identity, self.running) else None
        self._reply(identity, "status", req, {
            **self.service.describe(), "running": mine, "busy": self.running is not None,
            "progress": self.progress.get(mine), "queued": [j for j in queued if self._owns(identity, j)],
            "queue_length": len(queued), "clients": len(self.clients),
        })

    def _on_stages(self, identity, msg, req):
        self._reply(identity, "stages", req, {"stages": self.service.stages()})

    def _on_echo(self, identity, msg, req):
        self._reply(identity, "echo", req, {}, msg.arrays)

    def _on_submit(self, identity, msg, req):
        owner = self._owner(identity)
        pending = self.pending.setdefault(owner, {})
        if len(pending) >= MAX_PENDING:
            raise RequestError("too_many_pending", f"this client has {len(pending)} jobs still waiting for their "
                                                   "inputs; send their frames or cancel some before submitting more")
        sub = self.service.submit(msg.header)
        job_id = sub["job_id"]
        owned = self.owned.setdefault(owner, {})
        owned.pop(job_id, None)
        owned[job_id] = None
        while len(owned) > MAX_OWNED:
            owned.pop(next(iter(owned)))
        pending[job_id] = None
        self.subscribers.setdefault(job_id, set()).add(identity)
        if identity in self.clients:
            self.clients[identity].jobs.add(job_id)
        self._reply(identity, "accepted", req, sub)
        self._maybe_queue(identity, job_id)

    def _on_input(self, identity, msg, req):
        job_id, frame, digest = msg.get("job_id"), msg.get("frame"), msg.get("digest")
        if not isinstance(job_id, str) or not isinstance(frame, int) or not isinstance(digest, str):
            raise RequestError("bad_request", "input needs job_id (text), frame (integer) and digest (text)")
        self._check_owner(identity, job_id)
        self.service.put_input(job_id, frame, digest, msg.arrays)
        self._reply(identity, "stored", req, {"job_id": job_id, "frame": frame})
        self._maybe_queue(identity, job_id)

    def _on_fetch(self, identity, msg, req):
        job_id, frame = msg.get("job_id"), msg.get("frame")
        if not isinstance(job_id, str) or not isinstance(frame, int):
            raise RequestError("bad_request", "fetch needs job_id (text) and frame (integer)")
        self._check_owner(identity, job_id)
        files = self.service.read_result(job_id, frame)
        arrays = {name: np.frombuffer(data, dtype=np.uint8) for name, data in files.items()}
        self._reply(identity, "result", req, {"job_id": job_id, "frame": frame}, arrays)

    def _on_cancel(self, identity, msg, req):
        job_id = msg.get("job_id")
        if not isinstance(job_id, str):
            raise RequestError("bad_request", "cancel needs job_id (text)")
        self._check_owner(identity, job_id)
        self.pending.get(self._owner(identity), {}).pop(job_id, None)
        if job_id == self.running:
            self.cancel_flags[job_id].set()  # the worker stops between steps and reports 'cancelled'
            return
        for q in self.queues.values():
            if job_id in q:
                q.remove(job_id)
        self._publish(job_id, "cancelled", {"job_id": job_id}, also=identity)

    # -- jobs --------------------------------------------------------------------------------
    def _maybe_queue(self, identity: bytes, job_id: str) -> None:
        if job_id == self.running or any(job_id in q for q in self.queues.values()):
            return
        if self.service.missing_inputs(job_id):
            return
        self.pending.get(self._owner(identity), {}).pop(job_id, None)
        if self.service.is_complete(job_id):
            self._publish(job_id, "done", {"job_id": job_id, "frames": self.service.done_frames(job_id)})
            return
        self.queues.setdefault(identity, deque()).append(job_id)
        self._publish(job_id, "queued", {"job_id": job_id, "position": sum(len(q) for q in self.queues.values())})

    def _dispatch(self) -> None:
        if self.running is not None:
            return
        waiting = [identity for identity, q in self.queues.items() if q]
        if not waiting:
            return
        # The client served longest ago goes first (never served: first of all), so one client's long
        # list never holds back another's job, whenever each was queued.
        identity = min(waiting, key=lambda i: self.last_served.get(i, float("-inf")))
        job_id = self.queues[identity].popleft()
        self.last_served[identity] = time.monotonic()
        self.running = job_id
        self.cancel_flags[job_id] = threading.Event()
        self._publish(job_id, "started", {"job_id": job_id})
        self._work.put(job_id)

    def _worker_loop(self) -> None:
        out = self.ctx.socket(zmq.PUSH)
        out.linger = 0
        out.connect(self._events_url)
        try:
            while True:
                job_id = self._work.get()
                if job_id is None:
                    return
                flag = self.cancel_flags[job_id]

                def emit(kind: str, **fields):
                    out.send(json.dumps({"kind": kind, "job_id": job_id, **fields}).encode())

                last = [0.0]

                def on_progress(frame, step, steps, message=""):
                    now = time.monotonic()
                    if now - last[0] >= 0.05 or step == steps:  # cap the event rate, not the work
                        last[0] = now
                        emit("progress", frame=frame, step=step, steps=steps, message=message)

                try:
                    self.service.run(job_id, lambda frame: emit("frame", frame=frame), on_progress, flag.is_set)
                    emit("cancelled" if flag.is_set() else "done")
                except Exception as e:  # every failure reaches the client as an error event
                    if type(e).__name__ == "Cancelled":
                        emit("cancelled")
                    else:
                        log.exception("job %s failed", job_id)
                        emit("error", code=getattr(e, "code", "stage_failed"), message=str(e),
                             frame=getattr(e, "frame", None))
        finally:
            out.close(linger=0)

    def _drain_events(self) -> None:
        while True:
            try:
                event = json.loads(self.events.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            kind, job_id = event.pop("kind"), event["job_id"]
            if kind == "progress":
                self.progress[job_id] = event
                self._publish(job_id, "progress", event)
            elif kind == "frame":
                self._publish(job_id, "frame", event)
            else:
                self.running = None
                self.progress.pop(job_id, None)
                self.cancel_flags.pop(job_id, None)
                if kind == "error":
                    event["message"] = redact(str(event.get("message", "")), self.store_root)
                if kind == "done":
                    event["frames"] = self.service.done_frames(job_id)
                self._publish(job_id, kind, event)

    def _publish(self, job_id: str, type: str, fields: dict, also: bytes | None = None) -> None:
        targets = set(self.subscribers.get(job_id, ()))
        if also is not None:
            targets.add(also)
        for identity in targets:
            self._send(identity, wire.encode(type, fields))

    # -- liveness ----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self.keys is not None and self.keys.clients_changed():
            self.keys.reload(self.auth)  # a key removed from clients/ is refused from the next handshake on
        for identity, peer in list(self.peers.items()):
            if now - peer.last_seen > SHM_GRACE_S:
                self.peers.pop(identity).close()
            elif not peer.outbox.attached and now - peer.since > self.client_timeout_s:
                peer.outbox.unlink()  # never taken: the client fell back or vanished; ours stays unused
        for identity, since in list(self.forgotten.items()):
            if now - since > SHM_GRACE_S:  # silent that long: a keyless connection's jobs go with it
                self._drop_connection(identity)
        for identity, state in list(self.clients.items()):
            if now - state.last_seen > self.client_timeout_s:
                self._forget(identity)
            else:
                self._send(identity, wire.encode("heartbeat", {"busy": self.running is not None, "session": self.session}))

    def _forget(self, identity: bytes) -> None:
        if self.clients.pop(identity, None) is not None:
            self.forgotten[identity] = time.monotonic()
        if not self.queues.get(identity):  # its queued jobs (if any) still run; otherwise drop its slot
            self.queues.pop(identity, None)
            self.last_served.pop(identity, None)
        for subs in self.subscribers.values():
            subs.discard(identity)

    def _send(self, identity: bytes, frames: list) -> None:
        try:
            self.socket.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("client %s is not reading; dropped one message", identity.hex())
            self._unsent(identity, frames)
        except zmq.ZMQError as e:
            self._unsent(identity, frames)
            if e.errno == zmq.EHOSTUNREACH:
                self._forget(identity)
                self._drop_connection(identity)
                peer = self.peers.pop(identity, None)  # gone for good: its connection is closed
                if peer is not None:
                    peer.close()
            else:
                raise

    def _drop_connection(self, identity: bytes) -> None:
        """A connection that is gone: without keys its jobs were its own, and no one can name them any more."""
        self.forgotten.pop(identity, None)
        self.pending.pop(b"conn:" + identity, None)
        self.owned.pop(b"conn:" + identity, None)

    def _unsent(self, identity: bytes, frames: list) -> None:
        """A message that never left: the client will not free the shared-memory slots it filled."""
        peer = self.peers.get(identity)
        if peer is not None:
            for slot in getattr(frames, "slots", ()):
                peer.outbox.release(slot)
