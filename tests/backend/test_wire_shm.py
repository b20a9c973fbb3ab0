"""The shared-memory fast path (backend/ipc/shm.py): arenas in this process, then through a real `dstage serve`
in another process. Negotiation falls back to inline buffers, bad references get error replies, and nothing
is left in /dev/shm."""

from __future__ import annotations

import gc
import json
import mmap
import os
import secrets
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import Backend, FrameSet, frame_files, reference_take, wait_for  # noqa: E402

from backend.ipc import shm, wire  # noqa: E402
from backend.ipc.client import Client  # noqa: E402
from backend.ipc.remote_job import RemoteJob  # noqa: E402

pytestmark = pytest.mark.skipif(not shm.available(), reason="no POSIX shared memory (/dev/shm) here")
ANSWER_S = 20.0
UHD = (2160, 3840)


def segments() -> set[str]:
    return {n for n in os.listdir(shm.SHM_DIR) if n.startswith("dstage-")}


@pytest.fixture(autouse=True)
def no_leaks():
    """Every test: whatever it created in /dev/shm is gone at the end (the sweep test waits for its own)."""
    before = segments()
    yield
    gc.collect()
    wait_for(lambda: not (segments() - before), 5.0, f"no dstage segments left, found {segments() - before}")


def frame_rgba(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*UHD, 4), dtype=np.uint8)


def from_shared_memory(array: np.ndarray) -> bool:
    base = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return isinstance(getattr(base, "obj", base), mmap.mmap)  # numpy wraps the mmap in a memoryview


# -- arenas in one process ---------------------------------------------------------------------------
@pytest.fixture
def pair():
    out = shm.Outbox(size=256 << 20)
    inbox = shm.Inbox(out.offer())
    yield out, inbox
    out.close()


def test_attaching_unlinks_the_name_and_marks_the_arena(pair):
    out, _ = pair
    assert out.name not in segments()
    assert out.attached


def test_big_arrays_go_through_the_arena_small_ones_inline(pair):
    out, inbox = pair
    big = frame_rgba(1)
    depth = np.random.default_rng(2).random(UHD, dtype=np.float32)
    small = np.arange(100, dtype=np.uint16)
    frames = wire.encode("echo", {"req": 1}, {"big": big, "depth": depth, "small": small}, shm=out)
    assert len(frames) == 2 and len(frames.slots) == 2  # header + the small one's buffer
    msg = wire.decode(frames, shm=inbox)
    assert msg.arrays["big"].tobytes() == big.tobytes()
    assert msg.arrays["depth"].tobytes() == depth.tobytes()
    np.testing.assert_array_equal(msg.arrays["small"], small)
    assert from_shared_memory(msg.arrays["big"]) and not from_shared_memory(msg.arrays["small"])
    assert not msg.arrays["big"].flags.writeable


def test_a_slot_is_reused_only_when_the_last_view_is_gone(pair):
    out, inbox = pair
    first = wire.decode(wire.encode("echo", {}, {"x": frame_rgba(1)}, shm=out), shm=inbox).arrays["x"]
    keep = first[100:200]          # a view of a view keeps the slot busy
    del first
    second = wire.decode(wire.encode("echo", {}, {"x": frame_rgba(2)}, shm=out), shm=inbox).arrays["x"]
    assert len(out.slots) == 2
    assert keep.tobytes() == frame_rgba(1)[100:200].tobytes(), "a slot in use was overwritten"
    del keep, second
    gc.collect()
    wire.decode(wire.encode("echo", {}, {"x": frame_rgba(3)}, shm=out), shm=inbox)
    assert len(out.slots) == 2, "freed slots were not reused"


def test_a_full_arena_falls_back_to_inline(pair):
    out, inbox = pair
    held = [wire.decode(wire.encode("echo", {}, {"x": frame_rgba(i)}, shm=out), shm=inbox).arrays["x"]
            for i in range(7)]  # 7 x 33 MB slots fill 256 MB
    frames = wire.encode("echo", {}, {"x": frame_rgba(9)}, shm=out)
    assert not frames.slots and len(frames) == 2
    assert wire.decode(frames, shm=inbox).arrays["x"].tobytes() == frame_rgba(9).tobytes()
    assert held[0].tobytes() == frame_rgba(0).tobytes()


def ref_message(ref: dict, req: int = 5) -> list:
    """An echo of one 1 MB array that lives (or claims to) in shared memory at `ref`."""
    spec = {"name": "x", "dtype": "uint8", "shape": [1024, 1024], "shm": ref}
    return [json.dumps({"v": wire.PROTOCOL_VERSION, "type": "echo", "req": req, "arrays": [spec]}).encode()]


def good_ref(out: shm.Outbox) -> dict:
    return out.put(np.zeros((1024, 1024), np.uint8))


@pytest.mark.parametrize("change, code", [
    ({"arena": "other-" + "0" * 32}, "shm_bad_name"),
    ({"arena": "../dstage-" + "0" * 32}, "shm_bad_name"),
    ({"arena": "dstage-" + "0" * 30 + "/x"}, "shm_bad_name"),
    ({"arena": "dstage-" + "0" * 32}, "shm_unknown_arena"),
    ({"offset": 256 << 20}, "shm_out_of_range"),
    ({"offset": (256 << 20) - 4096}, "shm_out_of_range"),   # the arena is too small for the array there
    ({"offset": 4097}, "shm_out_of_range"),
    ({"offset": 0}, "shm_out_of_range"),
    ({"nbytes": 1024 * 1024 - 1}, "size_mismatch"),
    ({"slot": shm.MAX_SLOTS}, "shm_bad_ref"),
    ({"slot": "0"}, "shm_bad_ref"),
])
def test_bad_references_are_wire_errors(pair, change, code):
    out, inbox = pair
    with pytest.raises(wire.WireError) as e:
        wire.decode(ref_message({**good_ref(out), **change}), shm=inbox)
    assert e.value.code == code, str(e.value)


def test_references_without_shared_memory_are_refused(pair):
    out, _ = pair
    with pytest.raises(wire.WireError) as e:
        wire.decode(ref_message(good_ref(out)))
    assert e.value.code == "shm_unavailable"


def offer_with(out: shm.Outbox, **change) -> dict:
    return {**out.offer(), **change}


@pytest.mark.parametrize("change, code", [
    ({"arena": "other-" + "0" * 32}, "shm_bad_name"),
    ({"arena": "../../etc/passwd"}, "shm_bad_name"),
    ({"arena": "dstage-" + "0" * 32}, "shm_missing"),
    ({"size": 1 << 20}, "shm_bad_size"),          # the file is bigger than the offer says
    ({"size": 1 << 40}, "shm_bad_size"),
    ({"token": "00" * 16}, "shm_bad_token"),
    ({"token": "zz"}, "shm_bad_offer"),
])
def test_bad_offers_are_refused(change, code):
    out = shm.Outbox(size=64 << 20)
    try:
        with pytest.raises(wire.WireError) as e:
            shm.Inbox(offer_with(out, **change))
        assert e.value.code == code, str(e.value)
        assert not out.attached
    finally:
        out.close()


# -- through a real backend --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    server = Backend(tmp_path_factory.mktemp("shm") / "store").start()
    yield server
    server.stop()


def test_4k_frames_round_trip_through_shared_memory_bit_exact(backend):
    with Client(backend.url, timeout_s=ANSWER_S) as client:
        client.request("ping", timeout_s=ANSWER_S)
        assert client.shm_status == "on"
        for seed in range(3):
            color = frame_rgba(seed)
            depth = np.random.default_rng(seed).random(UHD, dtype=np.float32)
            reply = client.request("echo", arrays={"color": color, "depth": depth}, timeout_s=ANSWER_S)
            assert reply.arrays["color"].tobytes() == color.tobytes()
            assert reply.arrays["depth"].tobytes() == depth.tobytes()
            assert from_shared_memory(reply.arrays["color"]) and from_shared_memory(reply.arrays["depth"])
            del reply
        assert len(client.outbox.slots) <= 4, "slots were not reused"
    assert backend.proc.poll() is None


def test_a_job_uploads_big_frames_through_shared_memory(backend, tmp_path):
    frames = FrameSet(3, 640, seed=5)   # 1.2 MB each: over the threshold
    params = {"key": {"tolerance": 0.2}}
    with Client(backend.url, timeout_s=ANSWER_S) as client:
        job = RemoteJob(client, stage="matte", params=params, digests=frames.digests, read_input=frames.read,
                        size=frames.size, out_dir=tmp_path / "take")
        deadline = time.monotonic() + 300
        while job.active and time.monotonic() < deadline:
            job.step(0.05)
        assert job.state == "done", (job.state, job.error)
        assert client.shm_status == "on" and client.outbox.slots, "the inputs did not go through shared memory"
    expected = frame_files(reference_take(tmp_path / "ref", frames, params))
    assert frame_files(tmp_path / "take") == expected and len(expected) == 6


def raw_dealer(url: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(url)
    return sock


def reply_to(sock: zmq.Socket, req: int, inbox=None) -> wire.Message:
    deadline = time.monotonic() + ANSWER_S
    while time.monotonic() < deadline:
        if sock.poll(100):
            msg = wire.decode(sock.recv_multipart(), accept=wire.EVENTS, shm=inbox)
            # a message that fails decoding is answered without its req (its header is not trusted)
            if msg.get("req") == req or (msg.type == "error" and msg.get("req") is None):
                return msg
    raise AssertionError(f"no reply to request {req}")


def hello(sock: zmq.Socket, offer: dict | None, req: int = 1) -> wire.Message:
    sock.send_multipart(wire.encode("hello", {"req": req, **({"shm": offer} if offer else {})}))
    return reply_to(sock, req)


@pytest.mark.parametrize("change, code", [
    ({"arena": "dstage-" + secrets.token_hex(16)}, "shm_missing"),   # a name this machine does not have
    ({"arena": "../dstage-" + "0" * 32}, "shm_bad_name"),
    ({"arena": "psm_" + "0" * 32}, "shm_bad_name"),
    ({"size": 4096}, "shm_bad_size"),
    ({"token": secrets.token_hex(16)}, "shm_bad_token"),
])
def test_a_failed_probe_is_answered_and_the_server_goes_on(backend, change, code):
    out = shm.Outbox(size=64 << 20)
    sock = raw_dealer(backend.url)
    try:
        welcome = hello(sock, offer_with(out, **change))
        assert welcome.type == "welcome" and welcome.get("shm", {}).get("ok") is False
        assert welcome.get("shm").get("code") == code, welcome.get("shm")
        sock.send_multipart(wire.encode("ping", {"req": 2}))
        assert reply_to(sock, 2).type == "pong"
    finally:
        sock.close()
        out.close()


@pytest.mark.parametrize("how", ["--no-shm", "DSTAGE_SHM=0"])
def test_a_server_without_shared_memory_gets_inline_frames(tmp_path, monkeypatch, how):
    (tmp_path / "s").mkdir()
    server = Backend(tmp_path / "s" / "store", None, *([how] if how.startswith("--") else []))
    with monkeypatch.context() as env:
        if "=" in how:
            env.setenv(*how.split("="))   # for the server process only: the client below has it on
        server.start()
    try:
        with Client(server.url, timeout_s=ANSWER_S) as client:
            client.request("ping", timeout_s=ANSWER_S)
            assert client.shm_status.startswith("off") and "shared memory" in client.shm_status
            assert client.outbox is None and client.inbox is None
            color = frame_rgba(7)
            reply = client.request("echo", arrays={"color": color}, timeout_s=ANSWER_S)
            assert reply.arrays["color"].tobytes() == color.tobytes()
            assert not from_shared_memory(reply.arrays["color"])
    finally:
        server.stop()


def negotiated(url: str):
    """A raw socket that went through the real negotiation with a real Outbox and Inbox."""
    sock = raw_dealer(url)
    out = shm.Outbox(size=256 << 20)
    welcome = hello(sock, out.offer())
    assert welcome.get("shm", {}).get("ok"), welcome.header
    return sock, out, shm.Inbox(welcome.get("shm")["offer"])


def test_malformed_references_get_error_replies_and_the_server_goes_on(backend):
    sock, out, inbox = negotiated(backend.url)
    try:
        good = good_ref(out)
        cases = [
            ({"arena": "other-" + "0" * 32}, "shm_bad_name"),
            ({"arena": "../" + out.name}, "shm_bad_name"),
            ({"arena": "dstage-" + secrets.token_hex(16)}, "shm_unknown_arena"),   # missing segment
            ({"offset": (256 << 20) - 4096}, "shm_out_of_range"),                 # segment too small
            ({"nbytes": 999}, "size_mismatch"),
        ]
        for i, (change, code) in enumerate(cases, start=10):
            sock.send_multipart(ref_message({**good, **change}, req=i))
            reply = reply_to(sock, i)
            assert reply.type == "error" and reply.get("code") == code, reply.header
        sock.send_multipart(wire.encode("ping", {"req": 99}))
        assert reply_to(sock, 99).type == "pong"
        # and the same connection still carries good references both ways
        color = frame_rgba(3)
        sock.send_multipart(wire.encode("echo", {"req": 100}, {"x": color}, shm=out))
        reply = reply_to(sock, 100, inbox)
        assert reply.arrays["x"].tobytes() == color.tobytes() and from_shared_memory(reply.arrays["x"])
    finally:
        sock.close()
        out.close()


def test_a_client_closing_mid_stream_leaves_nothing(backend):
    client = Client(backend.url, timeout_s=ANSWER_S)
    client.request("ping", timeout_s=ANSWER_S)
    assert client.shm_status == "on"
    for seed in range(4):
        client.send("echo", arrays={"x": frame_rgba(seed)})   # replies never read
    client.close()
    with Client(backend.url, timeout_s=ANSWER_S) as other:
        assert other.request("ping", timeout_s=ANSWER_S).type == "pong"
    assert backend.proc.poll() is None


def test_an_arena_nobody_attaches_is_swept(backend):
    # a client offers its arena, then never maps the server's: the server unlinks its own name after the
    # client timeout (10 s)
    before = segments()
    sock = raw_dealer(backend.url)
    out = shm.Outbox(size=64 << 20)
    try:
        welcome = hello(sock, out.offer())
        name = welcome.get("shm")["offer"]["arena"]
        assert name in segments()
        wait_for(lambda: name not in segments(), 60.0, f"the server to sweep {name}", interval=0.5)
    finally:
        sock.close()
        out.close()
    assert segments() <= before
