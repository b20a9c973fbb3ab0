"""A backend and clients that strangers cannot crash or read: a real `dstage serve` in another process on
loopback, hostile messages, another client's jobs, SIGTERM mid-job, a hostile server's take layout, a dead
address. Every loop has a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import (PYTHON, REPO, Backend, FrameSet, assert_no_corrupt_files, dstage, env,  # noqa: E402
                            frame_files, free_port, reference_take, wait_for, write_frames)

from backend.ipc import wire  # noqa: E402
from backend.ipc.client import Client, ClientKeys, RemoteError  # noqa: E402
from backend.ipc.remote_job import RemoteJob  # noqa: E402
from backend.ipc.server import MAX_PENDING  # noqa: E402
from backend.ipc.take import TakeError  # noqa: E402

ANSWER_S = 20.0
JOB_S = 120.0
PARAMS = {"key": {"tolerance": 0.2}}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = Backend(tmp_path_factory.mktemp("hostile") / "store").start()
    yield server
    server.stop()


def raw_dealer(url: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(url)
    return sock


def reply(sock: zmq.Socket, timeout: float = ANSWER_S) -> dict:
    """The next non-heartbeat message's header, as plain JSON (the test trusts nothing the server sends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(100):
            head = json.loads(sock.recv_multipart()[0])
            if head.get("type") != "heartbeat":
                return head
    raise AssertionError("no reply from the backend")


def assert_alive(backend: Backend) -> None:
    assert backend.proc.poll() is None, backend.log.read_text()[-2000:]
    with Client(backend.url, timeout_s=ANSWER_S) as client:
        assert client.request("ping", timeout_s=ANSWER_S).type == "pong"


# -- hostile messages --------------------------------------------------------------------------------
@pytest.mark.parametrize("req", [
    "1" * 5000,                         # Python's int-digit limit (a plain ValueError in json.loads)
    "[" * 990 + "]" * 990,              # the decoder's (and the reply encoder's) recursion limit
    "1e999", "NaN",
])
def test_a_hostile_header_gets_an_error_reply_and_the_server_keeps_serving(backend, req):
    sock = raw_dealer(backend.url)
    try:
        sock.send(('{"v": 1, "type": "ping", "req": ' + req + "}").encode())
        head = reply(sock)
        assert head["type"] == "error" and head["code"] == "bad_header" and head.get("req") is None
    finally:
        sock.close()
    assert_alive(backend)


def test_a_req_the_server_did_not_validate_is_never_echoed(backend):
    sock = raw_dealer(backend.url)
    try:
        deep = "[" * 30 + "]" * 30        # within the depth limit, but no request id
        sock.send(('{"v": 1, "type": "ping", "req": ' + deep + "}").encode())
        head = reply(sock)
        assert head["type"] == "pong" and head["req"] is None
        sock.send(json.dumps({"v": 1, "type": "fetch", "req": "x" * 10_000}).encode())
        head = reply(sock)
        assert head["type"] == "error" and head["req"] is None and len(json.dumps(head)) < 3000
        sock.send(json.dumps({"v": 1, "type": "ping", "req": 7}).encode())
        assert reply(sock)["req"] == 7   # an ordinary id still comes back
    finally:
        sock.close()
    assert_alive(backend)


# -- ownership ---------------------------------------------------------------------------------------
def run_job(client: Client, frames: FrameSet, out: Path) -> RemoteJob:
    job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests, read_input=frames.read,
                    size=frames.size, out_dir=out)
    deadline = time.monotonic() + JOB_S
    while job.active and time.monotonic() < deadline:
        job.step(0.05)
    assert job.state == "done", (job.state, job.error)
    return job


def test_another_client_can_neither_see_nor_touch_a_job(backend, tmp_path):
    frames = FrameSet(3, 64, seed=11)
    with Client(backend.url, timeout_s=ANSWER_S) as owner, Client(backend.url, timeout_s=ANSWER_S) as other:
        job = run_job(owner, frames, tmp_path / "take")
        assert owner.request("fetch", {"job_id": job.job_id, "frame": 1}, timeout_s=ANSWER_S).arrays
        for type, fields in (("fetch", {"job_id": job.job_id, "frame": 1}), ("cancel", {"job_id": job.job_id}),
                             ("input", {"job_id": job.job_id, "frame": 1, "digest": frames.digests[1]})):
            with pytest.raises(RemoteError) as e:
                other.request(type, fields, timeout_s=ANSWER_S)
            assert e.value.code == "unknown_job", (type, e.value)
        status = other.request("status", timeout_s=ANSWER_S).header
        assert job.job_id not in json.dumps(status)
        # its own status lists nothing of the other's either, and the owner still fetches
        assert owner.request("fetch", {"job_id": job.job_id, "frame": 2}, timeout_s=ANSWER_S).arrays


def test_pending_submits_are_bounded_per_client(backend):
    with Client(backend.url, timeout_s=ANSWER_S) as client:
        for i in range(MAX_PENDING):
            digest = f"{i:064x}"
            client.request("submit", {"stage": "matte", "params": PARAMS, "frames": [[1, digest]], "size": [32, 32]},
                           timeout_s=ANSWER_S)
        with pytest.raises(RemoteError) as e:
            client.request("submit", {"stage": "matte", "params": PARAMS, "frames": [[1, "f" * 64]], "size": [32, 32]},
                           timeout_s=ANSWER_S)
        assert e.value.code == "too_many_pending" and "cancel" in str(e.value)
    with Client(backend.url, timeout_s=ANSWER_S) as fresh:  # the limit is per client, not the server's
        fresh.request("submit", {"stage": "matte", "params": PARAMS, "frames": [[1, "e" * 64]], "size": [32, 32]},
                      timeout_s=ANSWER_S)
    assert_alive(backend)


def test_replies_a_client_never_reads_do_not_pile_up_in_the_server(backend):
    def rss_mb() -> float:
        for line in Path(f"/proc/{backend.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    before = rss_mb()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = 0
    sock.rcvhwm = 1   # so that this process's I/O thread stops reading too, and the server's queue fills
    sock.connect(backend.url)
    try:
        payload = np.zeros(4 << 20, np.uint8)
        dropped_before = backend.log.read_text().count("is not reading")
        for req in range(150):   # 600 MB of echoes that are never read
            sock.send_multipart(wire.encode("echo", {"req": req}, {"x": payload}), copy=False)
        # until the server has handled them all: past its queue for this client it drops the replies
        wait_for(lambda: backend.log.read_text().count("is not reading") - dropped_before >= 150 - 64 - 20, 120,
                 "the server to drop replies the client does not read")
        assert_alive(backend)
        grown = rss_mb() - before
        print(f"server grew {grown:.0f} MB")
        assert grown < 450, f"the server holds {grown:.0f} MB for a client that does not read"
    finally:
        sock.close()
    assert_alive(backend)


# -- SIGTERM -----------------------------------------------------------------------------------------
def test_sigterm_mid_job_exits_0_every_time(tmp_path):
    frames = FrameSet(60, 256, seed=3)
    computed = []
    for attempt in range(3):
        backend = Backend(tmp_path / f"store{attempt}").start()
        try:
            with Client(backend.url, timeout_s=ANSWER_S) as client:
                job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests, read_input=frames.read,
                                size=frames.size, out_dir=tmp_path / f"take{attempt}")
                deadline = time.monotonic() + JOB_S
                while job.active and job.state != "running" and time.monotonic() < deadline:
                    job.step(0.02)
                job.step(0.05 * attempt)   # a little way into the job, a different way each time
            backend.proc.send_signal(signal.SIGTERM)
            code = backend.proc.wait(timeout=60)
            log = backend.log.read_text()
            assert code == 0, f"exit {code}:\n{log[-2000:]}"
            assert "terminate called" not in log and "Traceback" not in log
            computed.append(len(list((backend.store / "jobs" / job.job_id / "take" / "alpha").glob("*.png"))))
        finally:
            backend.kill()
    assert min(computed) < len(frames.digests), f"every job finished before SIGTERM came: {computed}"
    print("frames computed when SIGTERM came:", computed)


def test_sigterm_abandoning_a_step_exits_0_and_the_job_resumes_to_the_same_take(tmp_path):
    frames = FrameSet(30, 256, seed=8)
    store, out = tmp_path / "store", tmp_path / "take"
    backend = Backend(store, None, "--stop-grace", "0").start()   # no grace: the step in progress is abandoned
    try:
        with Client(backend.url, timeout_s=ANSWER_S) as client:
            job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests, read_input=frames.read,
                            size=frames.size, out_dir=out)
            deadline = time.monotonic() + JOB_S
            while not job.progress and job.active and time.monotonic() < deadline:
                job.step(0.02)   # until the backend reports work in progress
        backend.proc.send_signal(signal.SIGTERM)
        assert backend.proc.wait(timeout=60) == 0, backend.log.read_text()[-2000:]
        assert "Traceback" not in backend.log.read_text()
    finally:
        backend.kill()
    assert_no_corrupt_files(store)
    backend = Backend(store).start()
    try:
        with Client(backend.url, timeout_s=ANSWER_S) as client:
            run_job(client, frames, out)
    finally:
        backend.stop()
    assert frame_files(out) == frame_files(reference_take(tmp_path / "ref", frames, PARAMS))


# -- a hostile server --------------------------------------------------------------------------------
class HostileServer:
    """A ROUTER that answers hello, ping and submit with what `answer(header)` returns (raw header bytes)."""

    def __init__(self, answer):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.linger = 0
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            identity, head, *_ = self.sock.recv_multipart()
            header = json.loads(head)
            out = self.answer(header)
            if out is not None:
                self.sock.send_multipart([identity, out])

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def welcome(header) -> bytes:
    return json.dumps({"v": 1, "type": "welcome", "req": header.get("req"), "session": "s", "arrays": []}).encode()


def test_a_hostile_server_cannot_crash_dstage_ping():
    def answer(header):
        if header["type"] == "hello":
            return welcome(header)
        if header["type"] == "ping":
            return ('{"v": 1, "type": "pong", "req": ' + str(header["req"]) + ', "x": ' + "9" * 5000 + "}").encode()
        return None

    server = HostileServer(answer)
    try:
        result = dstage("ping", "--server", server.url, "--timeout", "3", timeout=60)
    finally:
        server.close()
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dstage: ") and "integer" in lines[0], result.stderr


def take_with_layer(name: str) -> dict:
    return {"format": "diffusion-stage/take", "version": 1, "frame_start": 1, "frame_end": 2, "width": 64,
            "height": 64, "layers": {"color": {"format": "png8"}, name: {"format": "png8"}}}


@pytest.mark.parametrize("layer", ["../../x", "a/b", "..", "x\\y", "/etc", ""])
def test_a_take_layer_that_is_a_path_is_refused_before_anything_is_written(tmp_path, layer):
    def answer(header):
        if header["type"] == "hello":
            return welcome(header)
        if header["type"] == "submit":
            return json.dumps({"v": 1, "type": "accepted", "req": header["req"], "job_id": "j", "need": [],
                               "done": [1, 2], "take": take_with_layer(layer), "arrays": []}).encode()
        return None

    server = HostileServer(answer)
    base = tmp_path / "a" / "b"
    base.mkdir(parents=True)
    frames = FrameSet(2, 64)
    try:
        with Client(server.url, timeout_s=ANSWER_S, shm_enabled=False) as client:
            job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests, read_input=frames.read,
                            size=frames.size, out_dir=base / "out")
            with pytest.raises(TakeError) as e:
                deadline = time.monotonic() + ANSWER_S
                while time.monotonic() < deadline:
                    job.step(0.05)
            assert "layer" in str(e.value)
    finally:
        server.close()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"]


def test_a_result_for_a_layer_the_take_does_not_declare_writes_nothing(tmp_path):
    def answer(header):
        if header["type"] == "hello":
            return welcome(header)
        if header["type"] == "submit":
            take = take_with_layer("alpha")
            return json.dumps({"v": 1, "type": "accepted", "req": header["req"], "job_id": "j", "need": [],
                               "done": [1], "take": take, "arrays": []}).encode()
        return None

    class Results(HostileServer):
        def _loop(self):
            while not self.stop.is_set():
                if not self.sock.poll(50):
                    continue
                identity, head, *_ = self.sock.recv_multipart()
                header = json.loads(head)
                if header["type"] == "fetch":
                    spec = [{"name": n, "dtype": "uint8", "shape": [3]} for n in ("color", "../../x")]
                    out = [json.dumps({"v": 1, "type": "result", "req": header["req"], "job_id": "j", "frame": 1,
                                       "arrays": spec}).encode(), b"abc", b"def"]
                    self.sock.send_multipart([identity, *out])
                elif (out := self.answer(header)) is not None:
                    self.sock.send_multipart([identity, out])

    server = Results(answer)
    frames = FrameSet(2, 64)
    try:
        with Client(server.url, timeout_s=ANSWER_S, shm_enabled=False) as client:
            job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests, read_input=frames.read,
                            size=frames.size, out_dir=tmp_path / "out")
            with pytest.raises(TakeError):
                deadline = time.monotonic() + ANSWER_S
                while time.monotonic() < deadline:
                    job.step(0.05)
    finally:
        server.close()
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["out/take.json"], written   # no color file for frame 1 either: all names checked first


# -- a dead address ----------------------------------------------------------------------------------
def shm_names() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("dstage-")} if os.path.isdir("/dev/shm") else set()


def held_by_a_live_process(name: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if name in Path(f"/proc/{pid}/maps").read_text():
                return True
            if any(name in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")):
                return True
        except OSError:
            continue
    return False


def test_run_to_a_dead_address_counts_down_then_gives_up_naming_it(tmp_path):
    frames = write_frames(tmp_path / "in", 2, 32)
    dead = f"tcp://127.0.0.1:{free_port()}"
    before = shm_names()
    start = time.monotonic()
    result = dstage("run", "matte", "--in", str(frames), "--out", str(tmp_path / "out"), "--server", dead,
                    "--timeout", "2", "--retries", "2", timeout=120)
    took = time.monotonic() - start
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "ends in" in result.stderr
    last = result.stderr.strip().splitlines()[-1].split("\r")[-1]
    assert dead in last and "no answer" in last and "3 tries" in last, result.stderr
    assert took < 60
    assert not [n for n in shm_names() - before if not held_by_a_live_process(n)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_client_killed_while_the_backend_is_unreachable_leaves_no_shared_memory(tmp_path, sig):
    frames = write_frames(tmp_path / "in", 2, 32)
    dead = f"tcp://127.0.0.1:{free_port()}"
    before = shm_names()
    proc = subprocess.Popen([PYTHON, "-m", "backend.cli", "run", "matte", "--in", str(frames), "--out",
                             str(tmp_path / "out"), "--server", dead, "--timeout", "1", "--retries", "100"],
                            cwd=REPO, env=env(), stderr=subprocess.PIPE, text=True)
    try:
        # SIGTERM any time; SIGKILL (no cleanup can run) once it has retried, when it holds no offer
        text = ""
        deadline = time.monotonic() + 60
        while "try 2" not in text and time.monotonic() < deadline:
            text += proc.stderr.read(1) or ""
        assert "try 2" in text, text
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
    assert not [n for n in shm_names() - before if not held_by_a_live_process(n)]


# -- budgets -----------------------------------------------------------------------------------------
def test_a_frame_size_over_the_servers_pixel_budget_is_refused_at_submit(backend):
    with Client(backend.url, timeout_s=ANSWER_S) as client:
        with pytest.raises(RemoteError) as e:
            client.request("submit", {"stage": "matte", "params": PARAMS, "frames": [[1, "d" * 64]],
                                      "size": [16000, 16000]}, timeout_s=ANSWER_S)
        assert e.value.code == "too_large"
        assert "16000x16000" in str(e.value) and "--max-megapixels" in str(e.value)


def test_the_service_keeps_a_bounded_number_of_specs_and_reads_others_back(tmp_path, monkeypatch):
    from backend import service as service_module
    from backend.store import Store

    monkeypatch.setattr(service_module, "SPEC_CACHE", 3)
    service = service_module.StoreService(Store(tmp_path / "store"), device="cpu")
    ids = [service.submit({"stage": "matte", "params": PARAMS, "frames": [[1, f"{i:064x}"]], "size": [32, 32]})
           ["job_id"] for i in range(6)]
    assert len(service._specs) == 3
    assert service.spec(ids[0]).digests == {1: f"{0:064x}"}   # evicted, read back from the store
    assert len(service._specs) == 3


# -- revoking a key ----------------------------------------------------------------------------------
def test_a_client_key_removed_from_the_folder_is_refused_without_a_restart(tmp_path):
    keys, artist = tmp_path / "keys", tmp_path / "artist"
    for args in (["--out", str(keys)], ["--out", str(artist), "--name", "artist"],
                 ["--allow", str(artist / "artist.key"), "--keys", str(keys)]):
        result = dstage("keys", *args, timeout=60)
        assert result.returncode == 0, result.stderr
    server = Backend(tmp_path / "store", None, keys=keys).start()
    allowed = ClientKeys(artist / "artist.key_secret", keys / "server.key")

    def answers(timeout: float) -> bool:
        with Client(server.url, keys=allowed) as client:
            try:
                return client.request("ping", timeout_s=timeout).type == "pong"
            except TimeoutError:
                return False

    try:
        assert answers(ANSWER_S)
        allowed_key = keys / "clients" / "artist.key"
        saved = allowed_key.read_bytes()
        allowed_key.unlink()
        wait_for(lambda: not answers(2.0), 30, "the removed key to be refused")
        allowed_key.write_bytes(saved)
        wait_for(lambda: answers(3.0), 30, "the key to be accepted again")
        assert server.proc.poll() is None
    finally:
        server.stop()


@pytest.mark.parametrize("need", [[[1]], ["../x"], [99], [None, 1.5]])
def test_a_hostile_accepted_reply_cannot_make_the_client_read_or_upload_other_frames(tmp_path, need):
    asked = []

    def answer(header):
        if header["type"] == "hello":
            return welcome(header)
        if header["type"] == "submit":
            return json.dumps({"v": 1, "type": "accepted", "req": header["req"], "job_id": "j", "need": need,
                               "need_sides": {"keyframes": need}, "done": [],
                               "take": take_with_layer("alpha"), "arrays": []}).encode()
        if header["type"] == "input":
            asked.append(header.get("frame"))
        return None

    server = HostileServer(answer)
    frames = FrameSet(2, 64)
    read = []
    try:
        with Client(server.url, timeout_s=ANSWER_S, shm_enabled=False) as client:
            job = RemoteJob(client, stage="matte", params=PARAMS, digests=frames.digests,
                            read_input=lambda f: read.append(f) or frames.read(f), size=frames.size,
                            out_dir=tmp_path / "out", sides={"keyframes": ({1: "k" * 64}, frames.read)})
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                job.step(0.05)
    finally:
        server.close()
    assert read == [] and asked == [], (read, asked)


# -- paths in error replies --------------------------------------------------------------------------
def test_error_replies_name_files_without_the_servers_absolute_paths(tmp_path):
    secret = tmp_path / "home-of-someone" / "models-dir"
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": {"depth": str(secret / "nothing-here")}}))
    backend = Backend(tmp_path / "store", None, "--models", str(models)).start()
    frames = FrameSet(1, 64)
    try:
        with Client(backend.url, timeout_s=ANSWER_S) as client:
            job = RemoteJob(client, stage="depth", params={}, digests=frames.digests, read_input=frames.read,
                            size=frames.size, out_dir=tmp_path / "out")
            deadline = time.monotonic() + JOB_S
            while job.active and time.monotonic() < deadline:
                job.step(0.05)
        assert job.state == "failed" and job.error[0] == "model_missing", (job.state, job.error)
        message = job.error[1]
        assert "nothing-here" in message and "'depth'" in message, message
        assert str(tmp_path) not in message and "home-of-someone" not in message, message
        assert backend.proc.poll() is None
    finally:
        backend.stop()


def test_with_keys_a_job_belongs_to_the_key_across_connections(tmp_path):
    keys, artist, other = tmp_path / "keys", tmp_path / "artist", tmp_path / "other"
    for args in (["--out", str(keys)], ["--out", str(artist), "--name", "artist"],
                 ["--out", str(other), "--name", "other"],
                 ["--allow", str(artist / "artist.key"), "--keys", str(keys)],
                 ["--allow", str(other / "other.key"), "--keys", str(keys)]):
        result = dstage("keys", *args, timeout=60)
        assert result.returncode == 0, result.stderr
    server = Backend(tmp_path / "store", None, keys=keys).start()
    artist_keys = ClientKeys(artist / "artist.key_secret", keys / "server.key")
    other_keys = ClientKeys(other / "other.key_secret", keys / "server.key")
    frames = FrameSet(2, 64, seed=5)
    try:
        with Client(server.url, keys=artist_keys, timeout_s=ANSWER_S) as client:
            job_id = run_job(client, frames, tmp_path / "take").job_id
        fetch = {"job_id": job_id, "frame": 1}
        with Client(server.url, keys=artist_keys, timeout_s=ANSWER_S) as again:  # a new connection, same key
            assert again.request("fetch", fetch, timeout_s=ANSWER_S).arrays
        with Client(server.url, keys=other_keys, timeout_s=ANSWER_S) as stranger:
            with pytest.raises(RemoteError) as e:
                stranger.request("fetch", fetch, timeout_s=ANSWER_S)
            assert e.value.code == "unknown_job"
    finally:
        server.stop()
