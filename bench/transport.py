"""How fast a frame crosses to the backend and back, against a memory copy and against PNG + base64 in JSON
over HTTP (how A1111/ComfyUI-style APIs move images). All measured side by side in one run.

    python bench/transport.py [--reps 9] [--http-reps 3]

Three ways to move the same frame, for a 4K RGBA8 colour frame (3840x2160x4 uint8, 33 MB) and a 4K
float32 depth frame (3840x2160 float32, 33 MB):

  wire      the real Client sends an `echo` request to a real `dstage serve` in another process; the
            server decodes it (validation included) and sends the arrays back. Time: one round trip, frame
            out and frame back. Two paths, each its own Client:
              shm   what a local client does by default: the hello negotiates shared memory
                    (backend/ipc/shm.py), so the frame is copied once into the client's arena, the server
                    reads it in place and copies the echo once into its own arena, which the client reads in
                    place; only the headers cross the socket;
              tcp   the same with shared memory turned off (Client(shm_enabled=False)): the buffers go
                    inline through loopback TCP, as to a remote backend.
  raw zmq   for reference, the floor under `wire`: a bare pyzmq DEALER -> ROUTER echo (copy=False both
            ends, no header, no validation) in another process over loopback TCP.
  memcpy    a copy of the same bytes into new memory in this process (`src.copy()`), as any receiver
            must make and as DESIGN.md's reference figure (about 3.0 GB/s here) measured;
  hot copy  for reference, np.copyto into a preallocated, already-touched array (cache- and page-warm:
            a lower bound no transport that hands over new buffers can reach).
  PNG/HTTP  the client encodes the frame as PNG, base64 and JSON and POSTs it to an http.server in another
            process, which decodes it and answers with the same image encoded the same way; the client
            decodes the answer. Depth goes as a 16-bit PNG, as those APIs take it (half the bytes and lossy,
            which favours HTTP). Time: one round trip.

Definitions (throughputs count bytes moved; a round trip moves the frame twice):
  G = 2 * frame bytes / wire round-trip time                                  (GB/s, 1 GB = 1e9 bytes)
  R = G / memcpy throughput, memcpy throughput = frame bytes / copy time
    (so R = 1 means a round trip costs as much as copying the frame there and back into new memory);
  R_hot, the same against the hot copy, is printed in the table beside it
  P = PNG/HTTP round-trip time / wire round-trip time
Each figure is the median of its repetitions; the repetitions of all the ways are interleaved so that
a busy machine slows them alike. The last line reports the RGBA8 frame on the path a local client uses by
default (shm when the negotiation succeeded, else tcp; the line above it says which):
  transport: <G> GB/s, <R> x memcpy, <P> x PNG+base64/HTTP
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.ipc.client import Client  # noqa: E402

WIDTH, HEIGHT = 3840, 2160


# -- test frames: smooth shading, edges and a little sensor noise, like a render (not flat, not pure noise)
def colour_frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    r = 128 + 100 * np.sin(x / 300.0) * np.cos(y / 200.0)
    g = 128 + 90 * np.cos((x + y) / 500.0)
    b = 64 + 0.05 * x
    image = np.stack([r, g, b, np.full_like(r, 255)], axis=-1)
    cv2.circle(image, (1900, 1100), 600, (230, 40, 60, 255), -1)
    cv2.rectangle(image, (300, 300), (1200, 1800), (20, 200, 30, 128), -1)
    image[..., :3] += rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def depth_frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    depth = 2.0 + 8.0 * (y / HEIGHT) + 0.5 * np.sin(x / 150.0)
    depth[800:1600, 1400:2400] = 1.5  # a subject in front
    return (depth + rng.normal(0, 0.002, depth.shape)).astype(np.float32)


# -- PNG + base64 + JSON --------------------------------------------------------------------------
def to_png_json(array: np.ndarray) -> bytes:
    if array.dtype == np.float32:  # depth: 16-bit grey over its range, as image APIs take it
        lo, hi = float(array.min()), float(array.max())
        image = np.round((array - lo) / (hi - lo or 1.0) * 65535).astype(np.uint16)
        extra = {"near": lo, "far": hi}
    else:
        image, extra = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA), {}
    ok, png = cv2.imencode(".png", image)
    assert ok
    return json.dumps({"image": base64.b64encode(png.tobytes()).decode("ascii"), **extra}).encode()


def from_png_json(body: bytes) -> np.ndarray:
    data = json.loads(body)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(data["image"]), np.uint8), cv2.IMREAD_UNCHANGED)
    if "near" in data:
        return image.astype(np.float32) / 65535 * (data["far"] - data["near"]) + data["near"]
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


class EchoHandler(BaseHTTPRequestHandler):
    """Decode the posted image and answer with the same image, encoded the same way (an img2img API's I/O)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = to_png_json(from_png_json(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def serve_raw_echo(port: int) -> None:
    import zmq

    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(f"tcp://127.0.0.1:{port}")
    print("ready", flush=True)
    while True:
        sock.send_multipart(sock.recv_multipart(copy=False), copy=False)


def serve_http(port: int) -> None:
    server = HTTPServer(("127.0.0.1", port), EchoHandler)
    print("ready", flush=True)
    server.serve_forever()


# -- the three ways ---------------------------------------------------------------------------------
def time_memcpy(src: np.ndarray) -> float:
    start = time.perf_counter()
    copy = src.copy()
    elapsed = time.perf_counter() - start
    del copy
    return elapsed


def time_hot_copy(src: np.ndarray, dst: np.ndarray) -> float:
    start = time.perf_counter()
    np.copyto(dst, src)
    return time.perf_counter() - start


def time_wire(client: Client, name: str, array: np.ndarray) -> float:
    start = time.perf_counter()
    reply = client.request("echo", arrays={name: array}, timeout_s=120)
    elapsed = time.perf_counter() - start
    assert reply.arrays[name].shape == array.shape and reply.arrays[name].dtype == array.dtype
    return elapsed


def time_raw(sock, array: np.ndarray) -> float:
    start = time.perf_counter()
    sock.send_multipart([b"frame", array], copy=False)
    back = sock.recv_multipart(copy=False)
    elapsed = time.perf_counter() - start
    assert len(back[1]) == array.nbytes
    return elapsed


def time_http(conn: http.client.HTTPConnection, array: np.ndarray) -> float:
    start = time.perf_counter()
    body = to_png_json(array)
    conn.request("POST", "/sdapi/v1/echo", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    back = from_png_json(response.read())
    elapsed = time.perf_counter() - start
    assert back.shape == array.shape
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], ready: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    out = open(log, "w")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while ready not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{args[2:4]} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="repetitions of the wire and memcpy timings")
    parser.add_argument("--http-reps", type=int, default=3, help="repetitions of the (slow) PNG/HTTP timing")
    parser.add_argument("--http-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw-echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.http_server:
        serve_http(args.http_server)
        return
    if args.raw_echo:
        serve_raw_echo(args.raw_echo)
        return
    import zmq

    frames = {"rgba8": colour_frame(), "depth32": depth_frame()}
    tmp = Path(tempfile.mkdtemp(prefix="dstage-bench-"))
    zport, hport, rport = free_port(), free_port(), free_port()
    backend = start([sys.executable, "-m", "backend.cli", "serve", "--bind", f"tcp://127.0.0.1:{zport}",
                     "--store", str(tmp / "store"), "--device", "cpu"], "listening on", tmp / "serve.log")
    http_proc = start([sys.executable, str(Path(__file__).resolve()), "--http-server", str(hport)], "ready",
                      tmp / "http.log")
    raw_proc = start([sys.executable, str(Path(__file__).resolve()), "--raw-echo", str(rport)], "ready",
                     tmp / "raw.log")
    times: dict[tuple[str, str], list[float]] = {}
    try:
        client = Client(f"tcp://127.0.0.1:{zport}", timeout_s=120)   # as any local client: shm if it can
        client.request("ping", timeout_s=120)
        default_path = "shm" if client.shm_status == "on" else "tcp"
        tcp_client = Client(f"tcp://127.0.0.1:{zport}", timeout_s=120, shm_enabled=False)
        tcp_client.request("ping", timeout_s=120)
        wires = {"shm": client, "tcp": tcp_client} if default_path == "shm" else {"tcp": tcp_client}
        conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=300)
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.linger = 0
        raw.connect(f"tcp://127.0.0.1:{rport}")
        dst = {name: np.empty_like(a) for name, a in frames.items()}
        for name, array in frames.items():  # warm up: page in buffers, open connections
            dst[name][...] = 1
            for wclient in wires.values():
                time_wire(wclient, name, array)
            time_raw(raw, array)
            time_http(conn, array)
        for rep in range(args.reps):
            for name, array in frames.items():
                times.setdefault((name, "memcpy"), []).append(time_memcpy(array))
                times.setdefault((name, "hot"), []).append(time_hot_copy(array, dst[name]))
                for path, wclient in wires.items():
                    times.setdefault((name, path), []).append(time_wire(wclient, name, array))
                times.setdefault((name, "raw"), []).append(time_raw(raw, array))
                if rep < args.http_reps:
                    times.setdefault((name, "http"), []).append(time_http(conn, array))
        conn.close()
        raw.close()
        client.close()
        tcp_client.close()
    finally:
        for proc in (backend, http_proc, raw_proc):
            proc.terminate()
            proc.wait(30)

    print(f"{'frame':<9} {'path':<5} {'MB':>6} {'memcpy GB/s':>12} {'hot GB/s':>9} {'wire RTT ms':>12} "
          f"{'wire GB/s':>10} {'x memcpy':>9} {'x hot':>6} {'raw zmq ms':>11} {'wire/raw':>9} {'HTTP RTT ms':>12} "
          f"{'HTTP/wire':>10}")
    summary = {}
    for name, array in frames.items():
        for path in ("tcp", "shm"):
            if (name, path) not in times:
                continue
            nbytes = array.nbytes
            copy = statistics.median(times[(name, "memcpy")])
            wire = statistics.median(times[(name, path)])
            web = statistics.median(times[(name, "http")])
            floor = statistics.median(times[(name, "raw")])
            memcpy_gbs = nbytes / copy / 1e9
            hot_gbs = nbytes / statistics.median(times[(name, "hot")]) / 1e9
            wire_gbs = 2 * nbytes / wire / 1e9
            summary[name, path] = (wire_gbs, wire_gbs / memcpy_gbs, web / wire)
            print(f"{name:<9} {path:<5} {nbytes / 1e6:6.1f} {memcpy_gbs:12.2f} {hot_gbs:9.2f} {wire * 1e3:12.2f} "
                  f"{wire_gbs:10.2f} {wire_gbs / memcpy_gbs:9.2f} {wire_gbs / hot_gbs:6.2f} {floor * 1e3:11.2f} "
                  f"{wire / floor:9.2f} {web * 1e3:12.0f} {web / wire:10.0f}")
    print(f"(medians of {args.reps} wire/memcpy and {args.http_reps} HTTP round trips; raw zmq is loopback TCP; "
          f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    print(f"path of a local client by default: {default_path} (shared memory: {client.shm_status})")
    g, r, p = summary["rgba8", default_path]
    print(f"transport: {g:.2f} GB/s, {r:.2f} x memcpy, {p:.0f} x PNG+base64/HTTP")


if __name__ == "__main__":
    main()
