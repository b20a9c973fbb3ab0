"""The backend over real sockets, with `dstage serve` in another process: requests answered while a
job runs, several clients at once, fair queueing, cancel, fuzzing, size limits, kill -9 and restart,
and CURVE authentication."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import (Backend, FrameSet, assert_no_corrupt_files, dstage, frame_files,  # noqa: E402
                            free_port, reference_take, wait_for)

from backend.ipc import shm, wire  # noqa: E402
from backend.ipc.client import Client, ClientKeys, RemoteError  # noqa: E402
from backend.ipc.redact import redact  # noqa: E402
from backend.ipc.remote_job import RemoteJob  # noqa: E402
from backend.ipc.take import Take  # noqa: E402

ANSWER_S = 20.0   # generous: the machine is small and shared
JOB_S = 120.0


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = Backend(tmp_path_factory.mktemp("backend") / "store").start()
    yield server
    server.stop()


class Recorder:
    """A Client that keeps every event it receives, with the time it arrived, while it waits for replies."""

    def __init__(self, url: str, **kw):
        self.client = Client(url, **kw)
        self.log: list[tuple[float, wire.Message]] = []

    def pump(self, timeout_ms: int = 20) -> None:
        for msg in self.client.poll(timeout_ms):
            self.log.append((time.monotonic(), msg))

    def call(self, type: str, fields: dict | None = None, arrays: dict | None = None) -> wire.Message:
        req = self.client.send(type, fields, arrays)
        msg = self.wait(lambda m: m.get("req") == req, f"the reply to {type}")
        if msg.type == "error":
            raise RemoteError(msg.get("code"), msg.get("message"))
        return msg

    def wait(self, match, what: str, timeout: float = JOB_S) -> wire.Message:
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for _, msg in self.log[seen:]:
                if match(msg):
                    return msg
            seen = len(self.log)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; got "
                                     f"{[(m.type, m.get('job_id')) for _, m in self.log[-10:]]}")
            self.pump()

    def event(self, type: str, job_id: str, timeout: float = JOB_S) -> wire.Message:
        return self.wait(lambda m: m.type == type and m.get("job_id") == job_id, f"{type} of {job_id}", timeout)

    def events(self, type: str, job_id: str) -> list[float]:
        return [t for t, m in self.log if m.type == type and m.get("job_id") == job_id]

    def submit(self, frames: FrameSet, params: dict, stage: str = "matte") -> str:
        """Submit a job and upload the inputs the server lacks; returns its id."""
        accepted = self.call("submit", {"stage": stage, "params": params, "size": list(frames.size),
                                        "frames": [[f, d] for f, d in sorted(frames.digests.items())]})
        job_id = accepted.get("job_id")
        for frame in accepted.get("need"):
            self.call("input", {"job_id": job_id, "frame": frame, "digest": frames.digests[frame]}, frames.read(frame))
        return job_id

    def close(self) -> None:
        self.client.close()


def stored_frames(backend: Backend, job_id: str) -> int:
    root = backend.store / "jobs" / job_id / "take"
    take = Take.open(root)
    return sum(take.is_complete(f) for f in take.info.frames)


def drive(job: RemoteJob, timeout: float = JOB_S, between=None) -> str:
    deadline = time.monotonic() + timeout
    while job.active:
        job.step(0.05)
        if between is not None:
            between()
        assert time.monotonic() < deadline, f"job still {job.state} after {timeout:.0f} s ({job.progress})"
    return job.state


def wait_idle(rec: Recorder) -> None:
    def idle():
        status = rec.call("status")
        return status.get("running") is None and not status.get("queued")

    wait_for(idle, JOB_S, "the backend to be idle", interval=0.05)


# -- answering while busy, several clients, fairness, cancel ----------------------------------------
def test_hello_ping_and_status_are_answered_while_a_job_runs(backend):
    worker, other = Recorder(backend.url), Recorder(backend.url)
    try:
        frames = FrameSet(400, 128, seed=11)
        job_id = worker.submit(frames, {"key": {"tolerance": 0.21}})
        worker.event("frame", job_id)  # computing, not just started
        latencies = []
        for kind, expected in [("hello", "welcome"), ("ping", "pong"), ("status", "status")] * 3:
            start = time.monotonic()
            reply = other.call(kind)
            latencies.append(time.monotonic() - start)
            assert reply.type == expected
        status = other.call("status")
        assert status.get("busy"), "the job finished before the test could talk to a busy backend"
        assert status.get("running") is None  # another client's job: busy, but not whose or which
        assert worker.call("status").get("running") == job_id
        assert 0 < stored_frames(backend, job_id) < 400
        assert max(latencies) < 5.0, latencies
        worker.client.send("cancel", {"job_id": job_id})  # answered by a 'cancelled' event, not a reply
        worker.event("cancelled", job_id)
    finally:
        worker.close()
        other.close()


def test_concurrent_clients_each_get_their_correct_take(backend, tmp_path):
    results: dict[int, object] = {}

    def one_client(i: int) -> None:
        try:
            frames = FrameSet(12, 96, seed=100 + i)
            client = Client(backend.url, timeout_s=10.0)
            job = RemoteJob(client, stage="matte", params={"refine": {"feather": float(i)}}, digests=frames.digests,
                            read_input=frames.read, size=frames.size, out_dir=tmp_path / f"take{i}")
            results[i] = (drive(job), frames)
            client.close()
        except BaseException as e:  # reported by the main thread
            results[i] = e

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOB_S * 2)
    assert len(results) == 4, "a client thread did not finish"
    for i in range(4):
        assert not isinstance(results[i], BaseException), results[i]
        state, frames = results[i]
        assert state == "done"
        expected = frame_files(reference_take(tmp_path / f"ref{i}", frames, {"refine": {"feather": float(i)}}))
        got = frame_files(tmp_path / f"take{i}")
        assert len(got) == 24 and got == expected, f"client {i}'s take differs from an uninterrupted run"
    # and the clients did not get each other's results: their inputs differ, so must their takes
    assert frame_files(tmp_path / "take0") != frame_files(tmp_path / "take1")


def test_each_client_gets_its_turn(backend):
    a, b = Recorder(backend.url), Recorder(backend.url)
    try:
        wait_idle(a)
        frames = FrameSet(40, 128, seed=21)
        jobs_a = [a.submit(frames, {"key": {"tolerance": t}}) for t in (0.301, 0.302, 0.303)]
        a.event("started", jobs_a[0])
        assert a.call("status").get("queued") == jobs_a[1:], "A's other jobs should queue behind its first"
        job_b = b.submit(frames, {"key": {"tolerance": 0.304}})
        def all_done():  # both sockets drained side by side, so arrival times compare
            a.pump(10)
            b.pump(10)
            return all(a.events("done", job) for job in jobs_a) and b.events("done", job_b)

        wait_for(all_done, JOB_S, "all four jobs", interval=0)
        started = {job: a.events("started", job) for job in jobs_a}
        started[job_b] = b.events("started", job_b)
        assert all(len(times) == 1 for times in started.values()), started
        assert started[jobs_a[0]][0] < started[job_b][0] < started[jobs_a[2]][0], (
            "B's single job must start before A's third, though A queued it first"
        )
        if b.events("queued", job_b)[0] < a.events("done", jobs_a[0])[0]:  # B was waiting when A1 ended
            assert started[job_b][0] < started[jobs_a[1]][0], "the client served longest ago goes next"
    finally:
        a.close()
        b.close()


def test_cancel_stops_a_running_job_and_a_queued_one_never_starts(backend):
    rec = Recorder(backend.url)
    try:
        wait_idle(rec)
        frames = FrameSet(400, 128, seed=31)
        running = rec.submit(frames, {"key": {"tolerance": 0.401}})
        queued = rec.submit(frames, {"key": {"tolerance": 0.402}})
        rec.event("frame", running)  # it has really started computing
        rec.client.send("cancel", {"job_id": queued})
        rec.event("cancelled", queued)
        rec.client.send("cancel", {"job_id": running})
        rec.event("cancelled", running)
        computed = stored_frames(backend, running)
        assert 0 < computed < 400, "cancel should stop the job between frames"
        status = rec.call("status")
        assert status.get("running") is None and queued not in status.get("queued")
        assert not rec.events("started", queued)
        assert stored_frames(backend, queued) == 0
        assert stored_frames(backend, running) == computed, "frames were written after 'cancelled'"
        # the backend still works: a new job runs to the end
        small = FrameSet(3, 64, seed=32)
        after = rec.submit(small, {})
        assert rec.event("done", after).get("frames") == [1, 2, 3]
    finally:
        rec.close()


# -- fuzzing over the socket ------------------------------------------------------------------------
def header(**fields) -> bytes:
    return json.dumps({"v": wire.PROTOCOL_VERSION, **fields}).encode()


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


def quoted(name: str) -> str:
    """How an error reply names an array: repr'd, and redacted like every reply (a name that looks like an
    absolute path, e.g. '/0', keeps only its last part: '…/0')."""
    return redact(repr(name))
shapes = st.lists(st.integers(0, 5), max_size=4)


@st.composite
def malformed(draw):
    """(frames, expected error code, words the message must contain)."""
    kind = draw(st.sampled_from(["random", "not_object", "version", "type", "lying_shape", "dtype", "shape",
                                 "huge_header", "too_many", "count", "bad_request"]))
    if kind == "random":
        parts = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=5))
        try:
            json.loads(parts[0])
        except (ValueError, RecursionError):
            return parts, "bad_header", ["JSON"]
        parts[0] = b"\xff" + parts[0]  # random bytes that happen to be JSON: make them not
        return parts, "bad_header", ["JSON"]
    if kind == "not_object":
        value = draw(st.lists(st.integers(), max_size=3) | st.integers() | st.text(max_size=5) | st.none())
        return [json.dumps(value).encode()], "bad_header", ["JSON object"]
    if kind == "version":
        version = draw(st.integers().filter(lambda v: v != 1) | st.text(max_size=4) | st.none())
        return [json.dumps({"v": version, "type": "ping"}).encode()], "bad_version", ["protocol version"]
    if kind == "type":
        type_ = draw(st.sampled_from(sorted(wire.EVENTS - wire.REQUESTS)) | st.text(max_size=10).filter(
            lambda t: t not in wire.REQUESTS))
        return [header(type=type_)], "unknown_type", ["unknown message type"]
    name = draw(names)
    if kind == "lying_shape":
        dtype, shape = draw(st.sampled_from(sorted(wire.DTYPES))), draw(shapes)
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        actual = draw(st.integers(0, expected + 64).filter(lambda n: n != expected))
        spec = {"name": name, "dtype": dtype, "shape": shape}
        return [header(type="echo", arrays=[spec]), bytes(actual)], "size_mismatch", [quoted(name), str(expected)]
    if kind == "dtype":
        dtype = draw(st.sampled_from(["float64", "object", "O", "int64", "<U4", "bool"]) | st.text(max_size=6))
        if dtype in wire.DTYPES:
            dtype = "float64"
        spec = {"name": name, "dtype": dtype, "shape": [1]}
        return [header(type="echo", arrays=[spec]), bytes(8)], "bad_dtype", [quoted(name)]
    if kind == "shape":
        shape = draw(st.lists(st.integers(max_value=-1), min_size=1, max_size=2)
                     | st.lists(st.integers(0, 2), min_size=5, max_size=7) | st.text(max_size=3))
        spec = {"name": name, "dtype": "uint8", "shape": shape}
        return [header(type="echo", arrays=[spec]), b""], "bad_shape", [quoted(name)]
    if kind == "huge_header":
        pad = draw(st.integers(1, 2 * wire.MAX_HEADER_BYTES))
        return [header(type="ping", pad="x" * (wire.MAX_HEADER_BYTES + pad))], "header_too_large", ["limit"]
    if kind == "too_many":
        n = draw(st.integers(wire.MAX_ARRAYS + 1, wire.MAX_ARRAYS + 8))
        specs = [{"name": f"a{i}", "dtype": "uint8", "shape": [0]} for i in range(n)]
        return [header(type="echo", arrays=specs)] + [b""] * n, "bad_arrays", [f"at most {wire.MAX_ARRAYS}"]
    if kind == "count":
        declared, sent = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        if declared == sent:
            sent += 1
        specs = [{"name": f"a{i}", "dtype": "uint8", "shape": [1]} for i in range(declared)]
        return [header(type="echo", arrays=specs)] + [b"x"] * sent, "array_count", [f"declares {declared}"]
    # a well-formed message whose fields make no sense to the service
    type_, fields = draw(st.sampled_from([
        ("submit", {"stage": 5}), ("submit", {"stage": "matte", "params": {}, "frames": "all", "size": [8, 8]}),
        ("input", {"job_id": 3}), ("fetch", {"frame": "one"}), ("cancel", {}),
    ]))
    return [header(type=type_, req=7, **fields)], "bad_request", [type_]


@pytest.fixture(scope="module")
def raw_socket(backend):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(backend.url)
    yield sock
    sock.close()


def next_reply(sock: zmq.Socket, timeout: float = ANSWER_S) -> wire.Message | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            msg = wire.decode(sock.recv_multipart(), accept=wire.EVENTS)
            if msg.type != "heartbeat":
                return msg
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(malformed())
@example(([header(type="echo", arrays=[{"name": "/0", "dtype": "float64", "shape": [1]}]), bytes(8)],
          "bad_dtype", [quoted("/0")]))  # a name that looks like a path: the reply redacts it
def test_garbage_over_the_socket_gets_error_replies(raw_socket, case):
    parts, code, words = case
    raw_socket.send_multipart(parts)
    reply = next_reply(raw_socket)
    assert reply is not None, "no answer to a malformed message"
    assert reply.type == "error" and reply.get("code") == code, (reply.type, reply.header)
    for word in words:
        assert word in reply.get("message"), (word, reply.get("message"))


def test_backend_still_answers_after_the_fuzzing(backend, raw_socket):
    # runs after the fuzz test (same module, file order); the server process must be the same one
    with Client(backend.url) as client:
        assert client.request("ping", timeout_s=ANSWER_S).type == "pong"
    assert backend.proc.poll() is None
    raw_socket.send_multipart([header(type="ping", req=1)])
    assert next_reply(raw_socket).type == "pong"


# -- size limits ------------------------------------------------------------------------------------
def test_oversize_messages_are_refused(tmp_path):
    server = Backend(tmp_path / "store", None, "--max-message-mb", "1").start()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(server.url)
    try:
        limit = 1 << 20
        # over the limit in total, every part under it: refused by the application, with a reason
        specs = [{"name": f"a{i}", "dtype": "uint8", "shape": [400_000]} for i in range(3)]
        sock.send_multipart([header(type="echo", req=1, arrays=specs)] + [bytes(400_000)] * 3)
        reply = next_reply(sock)
        assert reply is not None and reply.get("code") == "too_large", reply and reply.header
        assert str(limit) in reply.get("message") and "1200" in reply.get("message")
        # the client checks the server's limit (learnt from 'welcome') before sending
        with Client(server.url) as client:
            client.request("hello", timeout_s=ANSWER_S)
            with pytest.raises(wire.WireError, match="over the server's limit"):
                client.send("echo", arrays={"x": np.zeros(limit + 1, np.uint8)})
        # one part over libzmq's MAXMSGSIZE: libzmq drops that peer; the server goes on serving others
        big = ctx.socket(zmq.DEALER)
        big.linger = 0
        big.connect(server.url)
        big.send_multipart([header(type="echo", req=2, arrays=[{"name": "x", "dtype": "uint8", "shape": [2 * limit]}]),
                            bytes(2 * limit)])
        with Client(server.url) as other:
            for _ in range(3):
                assert other.request("ping", timeout_s=ANSWER_S).type == "pong"
        assert next_reply(big, timeout=3.0) is None, "a part over MAXMSGSIZE must not be answered"
        big.close()
        assert server.proc.poll() is None
        with Client(server.url) as other:
            echo = other.request("echo", arrays={"x": np.arange(1000, dtype=np.uint16)}, timeout_s=ANSWER_S)
            np.testing.assert_array_equal(echo.arrays["x"], np.arange(1000, dtype=np.uint16))
    finally:
        sock.close()
        server.stop()


# -- kill -9 and restart ----------------------------------------------------------------------------
def test_kill_9_at_random_moments_loses_nothing_and_output_matches(tmp_path):
    frames = FrameSet(120, 160, seed=41)
    expected = frame_files(reference_take(tmp_path / "ref", frames))
    server = Backend(tmp_path / "store").start()
    client = Client(server.url, timeout_s=2.0, heartbeat_s=0.5)
    out = tmp_path / "take"
    job = RemoteJob(client, stage="matte", params={}, digests=frames.digests, read_input=frames.read,
                    size=frames.size, out_dir=out)
    rng = random.Random(2024)

    def computed() -> int:  # frames the backend has stored so far
        folder = server.store / "jobs" / str(job.job_id) / "take" / "alpha"
        return len(list(folder.glob("*.png"))) if job.job_id and folder.is_dir() else 0

    # one kill in each phase, each at a random point of it, then one anywhere
    def uploaded(n: int) -> bool:
        return len(list((server.store / "inputs").rglob("*.npz"))) >= n

    moments = [
        ("uploading", lambda n=rng.randint(5, 60): uploaded(n)),
        ("computing", lambda n=rng.randint(3, 50): computed() >= n),
        ("fetching", lambda n=rng.randint(55, 100): len(job.local_done) >= n),
        ("anywhere", None),  # a random delay after the last restart, set when we get there
    ]
    kills = []
    try:
        for phase, due in moments:
            if phase == "anywhere":
                deadline = time.monotonic() + rng.uniform(0.05, 1.0)
                due = lambda: time.monotonic() >= deadline  # noqa: E731
            limit = time.monotonic() + JOB_S
            while job.active and not due():
                job.step(0.01)
                assert time.monotonic() < limit, f"never reached the {phase} moment"
            if not job.active:
                break
            server.kill()
            kills.append((phase, job.state, computed(), len(job.local_done)))
            # whatever the moment, every file under a final name is whole
            assert_no_corrupt_files(server.store)
            if out.exists():
                assert_no_corrupt_files(out)
            server.start()
        # the last kill may come too late if the job finished first; the three phases must have been hit
        assert [k[0] for k in kills[:3]] == ["uploading", "computing", "fetching"], kills
        assert drive(job) == "done", job.error
        print("kills at (phase, job state, frames computed, frames fetched):", kills)
    finally:
        client.close()
        server.stop()
    got = frame_files(out)
    assert len(got) == 240
    assert got == expected, f"output after kills {kills} differs from an uninterrupted run"
    assert frame_files(server.store / "jobs" / job.job_id / "take") == expected
    assert assert_no_corrupt_files(server.store) > 240


def test_dstage_run_through_a_backend_survives_its_restart(tmp_path):
    """The command line's client: `dstage run --server` keeps going while the backend is killed and restarted."""
    import subprocess

    from spine_fixtures import PYTHON, REPO, env, write_frames

    folder = write_frames(tmp_path / "in", 80, 160, seed=51)
    server = Backend(tmp_path / "store").start()
    out = tmp_path / "take"
    proc = subprocess.Popen([PYTHON, "-m", "backend.cli", "run", "matte", "--server", server.url, "--in", str(folder),
                             "--out", str(out), "--timeout", "2"], cwd=REPO, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (out / "color").is_dir() and any((out / "color").iterdir()), JOB_S, "the first fetched frame")
        server.kill()
        server.start()
        stdout, stderr = proc.communicate(timeout=JOB_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
    assert proc.returncode == 0, stderr
    assert "80 frames of matte" in stdout
    expected = frame_files(reference_take(tmp_path / "ref", FrameSet(80, 160, seed=51)))  # the same pixels
    assert frame_files(out) == expected and len(expected) == 160


# -- security ---------------------------------------------------------------------------------------
def test_non_loopback_bind_without_keys_refuses_to_start(tmp_path):
    result = dstage("serve", "--bind", f"tcp://0.0.0.0:{free_port()}", "--store", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on tcp://0.0.0.0" in result.stderr and "--keys" in result.stderr
    assert "dstage keys" in result.stderr


def test_curve_keys_admit_allowed_clients_only(tmp_path, monkeypatch):
    offered = []   # every arena a client offers, to check that a refused one leaves none behind

    class RecordedOutbox(shm.Outbox):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            offered.append(self)

    monkeypatch.setattr(shm, "Outbox", RecordedOutbox)
    keys, artist, mallory = tmp_path / "keys", tmp_path / "artist", tmp_path / "mallory"
    for args in (["--out", str(keys)], ["--out", str(artist), "--name", "artist"],
                 ["--out", str(mallory), "--name", "mallory"],
                 ["--allow", str(artist / "artist.key"), "--keys", str(keys)]):
        result = dstage("keys", *args, timeout=60)
        assert result.returncode == 0, result.stderr
    server = Backend(tmp_path / "store", None, keys=keys).start()
    try:
        allowed = ClientKeys(artist / "artist.key_secret", keys / "server.key")
        with Client(server.url, keys=allowed) as client:
            assert client.request("ping", timeout_s=ANSWER_S).type == "pong"
        ping = dstage("ping", "--server", server.url, "--client-key", str(artist / "artist.key_secret"),
                      "--server-key", str(keys / "server.key"), "--timeout", "20")
        assert ping.returncode == 0, ping.stderr
        # a refused client hears nothing: its hello (sent on connecting) or its ping times out, whichever the
        # failed handshake reaches first
        for refused in (ClientKeys(mallory / "mallory.key_secret", keys / "server.key"), None):  # None: no key at all
            with pytest.raises(TimeoutError):
                with Client(server.url, keys=refused) as client:
                    client.request("ping", timeout_s=3.0)
        assert offered and all(arena.closed and not os.path.exists(arena.path) for arena in offered)
        no_key = dstage("ping", "--server", server.url, "--timeout", "2")
        assert no_key.returncode != 0 and "no answer" in no_key.stderr
        with Client(server.url, keys=allowed) as client:  # the refusals did not disturb the server
            assert client.request("ping", timeout_s=ANSWER_S).type == "pong"
    finally:
        server.stop()
