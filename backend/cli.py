"""`dstage`: serve the backend, ping it, run a stage over frames, make keys.

    dstage serve --bind tcp://127.0.0.1:5555 --store ~/.cache/diffusion-stage/store [--keys DIR] [--cluster auto]
    dstage ping --server tcp://127.0.0.1:5555
    dstage run matte --in footage/ --out takes/matte [--server URL] [--set key.screen=blue]
    dstage keys --out KEYS [--name server]          dstage keys --allow artist.key --keys KEYS
    dstage stages
    dstage models check [--models models.json]       dstage models fetch [--models models.json]
    dstage store gc [--keep-days 30] [--max-gb 200]
    dstage metrics --take takes/propagate --source footage/

Every error ends the command with one line, `dstage: <what>, <which file or field>, <the fix>`, and the exit
status of backend/failures.py: 2 for bad input, 1 for a failed job, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from backend.failures import BAD_INPUT, FAILED, INTERRUPTED, debug, exit_status, explain
from backend.image_header import DEFAULT_MAX_MEGAPIXELS
from backend.memory import keep_freed_memory

DEFAULT_URL = "tcp://127.0.0.1:5555"
DEFAULT_STORE = os.environ.get("DSTAGE_STORE", "~/.cache/diffusion-stage/store")


class CommandError(Exception):
    """Ends the command with this message and exit status 2 (bad input), 1 (failure) or 130 (interrupted)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def parse_sets(items: list[str]) -> dict:
    """`--set a=1 --set key.screen=blue` -> {"a": "1", "key": {"screen": "blue"}}."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"--set {item!r}: expected KEY=VALUE (for example --set refine.feather=4)", 2)
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CommandError(f"--set {item!r}: {part} is both a value and a group", 2)
        node[leaf] = value
    return out


def client_keys(args):
    from backend.ipc.client import ClientKeys

    if args.client_key or args.server_key:
        if not (args.client_key and args.server_key):
            raise CommandError("CURVE needs both --client-key (your .key_secret) and --server-key (server.key)", 2)
        return ClientKeys(Path(args.client_key), Path(args.server_key))
    return None


# -- serve ---------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    from backend.ipc.auth import AuthError
    from backend.ipc.server import Server
    from backend.service import StoreService

    import zmq

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store, models = open_store(args.store), load_models(args)
    service = StoreService(store, models=models, device=args.device, pool=cluster_pool(args, store, models),
                           store_max_bytes=gb_to_bytes(args.store_max_gb), max_megapixels=args.max_megapixels)
    try:
        server = Server(service, args.bind, keys_dir=args.keys,
                        max_message_bytes=int(args.max_message_mb * (1 << 20)),
                        shm_enabled=False if args.no_shm else None, stop_grace_s=args.stop_grace)
    except AuthError as e:
        raise CommandError(str(e), 2) from None
    except zmq.ZMQError as e:
        if e.errno == errno.EADDRINUSE:
            raise CommandError(f"--bind {args.bind} is already in use by another process; stop it, or give "
                               "another port", BAD_INPUT) from None
        raise CommandError(f"cannot listen on --bind {args.bind}: {e}; addresses look like tcp://127.0.0.1:5555",
                           BAD_INPUT) from None
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(f"dstage: listening on {server.url} (store {service.store.root}, {service.describe()['device']})", flush=True)
    try:
        server.serve_forever()  # on SIGTERM: the running job stops at its next step, then sockets close
    except KeyboardInterrupt:
        pass
    if server.abandoned:
        print("dstage: stopped; the running job was abandoned mid-step and resumes when resubmitted", flush=True)
    else:
        print("dstage: stopped", flush=True)
    # Our sockets are closed and every store file is written atomically; what is left are library threads
    # (libzmq's I/O threads, torch's pool, a job abandoned mid-step) that abort the process (exit 134,
    # "terminate called without an active exception") when interpreter shutdown races them. Leave now.
    sys.stderr.flush()
    os._exit(0)


def cluster_pool(args, store, models):
    """With --cluster, the RunnerPool jobs run on (one Ray actor per GPU); None serves jobs in this process."""
    if not args.cluster:
        return None
    from backend.cluster.connect import connect
    from backend.cluster.pool import RunnerPool
    from backend.errors import StageError

    try:
        connect(args.cluster)
        pool = RunnerPool(str(store.root), models_arg=args.models, models=models, workers=args.cluster_workers)
    except StageError as e:
        raise CommandError(str(e), 2) from None
    info = pool.summary()
    print(f"dstage: cluster {args.cluster}: {info['workers']} workers on {info['nodes']} nodes, {info['gpus']} GPUs",
          flush=True)
    return pool


def load_models(args):
    from backend.models import ModelConfigError, load_registry

    try:
        return load_registry(getattr(args, "models", None))
    except ModelConfigError as e:
        raise CommandError(str(e), 2) from None


# -- ping ----------------------------------------------------------------------------------------
def cmd_ping(args) -> int:
    from backend.ipc.client import Client

    with Client(args.server, keys=client_keys(args), timeout_s=args.timeout) as client:
        start = time.monotonic()
        try:
            client.request("ping", timeout_s=args.timeout)
        except TimeoutError as e:
            raise CommandError(str(e)) from None
        ms = (time.monotonic() - start) * 1000
        info = client.request("status", timeout_s=args.timeout).header
    print(f"backend at {args.server} answered in {ms:.1f} ms: version {info.get('version')}, {info.get('device')}, "
          f"{'busy with ' + info['running'] if info.get('running') else 'busy' if info.get('busy') else 'idle'}")
    cluster = info.get("cluster")
    if isinstance(cluster, dict):
        print(f"cluster: {cluster.get('workers')} workers on {cluster.get('nodes')} nodes "
              f"({', '.join(map(str, cluster.get('hosts') or []))}), {cluster.get('gpus')} GPUs")
    else:
        print("embedded: jobs run in the backend's own process (serve with --cluster ADDRESS to spread them)")
    return 0


# -- run -----------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    from backend.out_folder import OutFolder, OutFolderError, check_out
    from backend.sources import open_side, open_source, parse_range

    side_paths = parse_sides(args.side)
    try:
        out = check_out(args.out, [("--in", args.input), *((f"--side {n}", p) for n, p in side_paths.items())])
    except OutFolderError as e:
        raise CommandError(str(e), BAD_INPUT) from None
    source = open_source(args.input, parse_range(args.frames), max_megapixels=args.max_megapixels,
                         allow_gaps=args.allow_gaps)
    sides = {name: open_side(name, path, args.max_megapixels) for name, path in side_paths.items()}
    params = parse_sets(args.set)
    store = None
    if not args.server:
        check_stage(args.stage, params, source.size, sides)  # a typo fails now, not after reading every frame
        store = open_store(args.store)
    side_digests = {name: read_all(side.keys, side.read, store, f"side {name}") for name, side in sides.items()}
    digests = read_all(source.frames, source.read, store, "reading", readers=2 if source.any_order else 1)
    guard = OutFolder(out)
    try:
        if args.server:
            return run_remote(args, source, params, digests, sides, side_digests)
        return run_embedded(args, store, source, params, digests, side_digests)
    except CommandError as e:
        if e.status != INTERRUPTED:
            guard.restore()
        raise
    except Exception:
        guard.restore()  # a failed run leaves --out as it was; the corrected command runs into it
        raise


def read_all(keys, read, store, label: str, readers: int = 1) -> dict[int, str]:
    """Digest every frame (or side input item), storing it for an embedded run; a few frames in memory at a time.
    The next frames are decoded in `readers` threads (backend/read_ahead.py; 2 for image files: decoding is the
    longest part) while this one is digested, and stored by two more threads (a store write waits on the disk:
    fsync), so decoding, hashing and writing overlap."""
    from backend.frame_writer import FrameWriter
    from backend.ipc.digest import digest_arrays
    from backend.progress import ProgressBar
    from backend.read_ahead import read_ahead

    digests = {}
    bar = ProgressBar(len(keys), label)
    # at most two frames wait to be stored
    storing = FrameWriter(lambda key, arrays: store.put_input(digests[key], arrays, digested=True),
                          lambda key: None, ahead=2, threads=2, name="store-input")
    try:
        for i, (key, arrays) in enumerate(read_ahead(keys, read, readers=readers), 1):
            digests[key] = digest_arrays(arrays)
            if store is not None:
                storing.submit(key, arrays)
            bar.update(i)
        storing.flush()
    finally:
        storing.close()
        bar.close()
    return digests


def parse_sides(items: list[str]) -> dict[str, str]:
    """`--side keyframes=DIR` -> {"keyframes": "DIR"}."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.isidentifier() or not path:
            raise CommandError(f"--side {item!r}: expected NAME=PATH (for example --side keyframes=stylized/); "
                               "`dstage stages` lists each stage's side inputs", BAD_INPUT)
        out[name] = path
    return out


def open_store(path: str):
    from backend.store import Store

    try:
        return Store(path)
    except (FileExistsError, NotADirectoryError):
        raise CommandError(f"--store {path} is a file (or lies under one); give a folder for the job store",
                           BAD_INPUT) from None
    except PermissionError:
        raise CommandError(f"--store {path} cannot be written by this user; give a folder you can write to",
                           BAD_INPUT) from None


def check_stage(stage: str, params: dict, size: tuple[int, int], sides: dict | None = None) -> None:
    from backend.jobs import prepare
    from backend.params import ParamError
    from backend.stages.base import StageError
    from backend.store import JobSpec

    try:
        prepare(JobSpec(stage, params, [], size, sides={name: [(0, "")] for name in sides or {}}))
    except ParamError as e:
        raise CommandError(f"stage {stage}: {e}", BAD_INPUT) from None
    except StageError as e:
        raise CommandError(str(e), exit_status(e.code)) from None


def run_embedded(args, store, source, params, digests, side_digests) -> int:
    from backend.ipc.take import Take
    from backend.jobs import JobCallbacks, identify, run_job
    from backend.params import ParamError
    from backend.progress import ProgressBar
    from backend.stages.base import Cancelled, StageError
    from backend.store import JobSpec

    spec = JobSpec(args.stage, params, sorted(digests.items()), source.size, source.fps, source.description,
                   sides={name: sorted(d.items()) for name, d in side_digests.items()})
    models = load_models(args)
    try:
        _, _, layers = identify(spec, models)  # canonical params, stage version, model identities: the job id
    except ParamError as e:
        raise CommandError(f"stage {args.stage}: {e}", BAD_INPUT) from None
    except StageError as e:
        raise CommandError(str(e), exit_status(e.code)) from None
    store.save_job(spec)
    stored = store.open_take(spec, layers)
    out = Take.create(args.out, stored.info)
    frames = [f for f, _ in spec.frames]

    def copy(frame: int) -> None:
        for layer in stored.info.layers:
            out.copy_file(layer, frame, stored.path(layer, frame))

    for frame in frames:
        if stored.is_complete(frame) and not out.is_complete(frame):
            copy(frame)
    done = [f for f in frames if out.is_complete(f)]
    bar = ProgressBar(len(frames), args.stage)
    bar.update(len(done), "(resumed)" if done else "")
    count = [len(done)]

    def on_frame(frame: int) -> None:
        count[0] += 1
        bar.update(count[0])

    try:
        with store.running(spec.job_id):
            # The copy to --out runs in the job's writer thread, beside the next frame's compute.
            run_job(store, spec, JobCallbacks(on_frame=on_frame, on_stored=copy), models=models)
    except KeyboardInterrupt:
        raise CommandError(f"interrupted; {count[0]}/{len(frames)} frames are in {args.out}: run again to finish",
                           INTERRUPTED) from None
    except Cancelled:
        raise CommandError("cancelled", INTERRUPTED) from None
    except Exception as e:  # StageError, a library's error, a full disk: one line, as through a server
        if debug():
            raise
        message, status = explain(e)
        raise CommandError(f"stage {args.stage} failed: {message}", status) from None
    finally:
        bar.close()
    missing = out.missing_frames() if len(frames) == len(out.info.frames) else [f for f in frames if not out.is_complete(f)]
    if missing:
        raise CommandError(f"{len(missing)} frames are missing from {args.out} (first {missing[0]})")
    keep_store_limit(args, store, spec.job_id)
    print(f"dstage: {len(frames)} frames of {args.stage} in {args.out}")
    return 0


def run_remote(args, source, params, digests, sides, side_digests) -> int:
    from backend.ipc.client import Client
    from backend.ipc.remote_job import RemoteJob
    from backend.progress import ProgressBar

    client = Client(args.server, keys=client_keys(args), timeout_s=args.timeout)
    job = RemoteJob(client, stage=args.stage, params=params, digests=digests, read_input=source.read,
                    size=source.size, out_dir=args.out, fps=source.fps, source=source.description,
                    sides={name: (side_digests[name], side.read) for name, side in sides.items()})
    bar = ProgressBar(len(source.frames), args.stage)
    heard = answered_at = 0   # messages heard; how many reconnects there were when the backend last answered
    shown = None
    try:
        while job.active:
            job.step(0.2)
            if client.heard != heard:
                heard, answered_at = client.heard, client.reconnects
            tries = client.reconnects - answered_at   # reconnects in a row without an answer
            if tries > args.retries:
                raise CommandError(f"no answer from the backend at {args.server} after {tries} tries "
                                   f"({args.timeout:g} s each); start it there (`dstage serve --bind ...`) or fix "
                                   "--server", FAILED)
            if client.silent_for > min(2.0, args.timeout / 2):  # a visible countdown to the next try
                left = max(0, int(args.timeout - client.silent_for + 0.999))
                if (tries, left) != shown:
                    shown = (tries, left)
                    print(f"\rdstage: no answer from {args.server}; try {tries + 1} of {args.retries + 1} ends in "
                          f"{left} s ", end="", file=sys.stderr, flush=True)
            note = ""
            if job.progress.get("steps"):
                note = f"frame {job.progress.get('frame')} step {job.progress.get('step')}/{job.progress.get('steps')}"
            bar.update(len(job.local_done), note)
            time.sleep(0.005)
    except KeyboardInterrupt:
        job.cancel()
        raise CommandError(f"interrupted; {len(job.local_done)} frames are in {args.out}: run again to finish",
                           INTERRUPTED) from None
    finally:
        bar.close()
        client.close()
    if job.state != "done":
        code, message = job.error or (job.state, "")
        code = str(code)  # a server may send any JSON value; the status comes from the code's text
        raise CommandError(f"stage {args.stage} {job.state}: {message} [{code}]", exit_status(code))
    print(f"dstage: {len(source.frames)} frames of {args.stage} in {args.out}")
    return 0


# -- store -----------------------------------------------------------------------------------------
def gb_to_bytes(value: float | None) -> int | None:
    return None if value is None else int(value * 1e9)


def keep_store_limit(args, store, job_id: str) -> None:
    """After an embedded run: the least recently used jobs go until the store fits --store-max-gb."""
    if args.store_max_gb is not None:
        store.collect(max_bytes=gb_to_bytes(args.store_max_gb), keep=(job_id,))


def cmd_store_gc(args) -> int:
    if args.keep_days is None and args.max_gb is None:
        raise CommandError("say what to keep: --keep-days N (jobs used in the last N days) and/or --max-gb N "
                           "(the most recently used jobs that fit in N GB)", BAD_INPUT)
    store = open_store(args.store)
    report = store.collect(keep_days=args.keep_days, max_bytes=gb_to_bytes(args.max_gb), dry_run=args.dry_run)
    print(f"dstage: {store.root}: {report.summary(args.dry_run)}")
    return 0


# -- models, metrics ---------------------------------------------------------------------------
def cmd_models_check(args) -> int:
    from backend.models import check_models, format_check

    report = check_models(load_models(args))
    print(json.dumps(report, indent=1) if args.json else format_check(report))
    return 0 if all(e["status"] == "found" for e in report) else 1


def cmd_models_fetch(args) -> int:
    from backend.model_fetch import fetch, fetch_plan

    registry = load_models(args)
    plan = fetch_plan(registry, args.role or None)
    if not plan:
        raise CommandError(f"{registry.source} names no model; add roles under \"models\" (see `dstage models check`)",
                           BAD_INPUT)
    print("\n".join(item.line() for item in plan))
    todo = [item for item in plan if item.action == "download"]
    manual = [item for item in plan if item.action == "manual"]
    if not todo:
        print(f"dstage: nothing to download{f'; {len(manual)} local model(s) missing (see above)' if manual else ''}")
        return 1 if manual else 0
    if args.dry_run:
        return 0
    if not registry.allow_download:
        raise CommandError(f"downloads are off in {registry.source}; set \"allow_download\": true there to fetch "
                           f"the {len(todo)} model(s) above, or run the download on a machine with network and copy "
                           "the Hugging Face cache here", BAD_INPUT)
    failures = fetch(registry, todo)
    for item, error in failures:
        print(f"dstage: could not download {item.what} for {item.role!r}: {error}", file=sys.stderr)
    if failures:
        raise CommandError(f"{len(failures)} of {len(todo)} download(s) failed (above); check the network (and "
                           "HF_ENDPOINT / HF_TOKEN), then run `dstage models fetch` again")
    print(f"dstage: fetched {len(todo)} model(s)")
    return 0


def cmd_metrics(args) -> int:
    from backend.imageio import decode_layer
    from backend.ipc.take import Take, TakeError
    from backend.pipelines.metrics import metrics_report
    from backend.sources import SourceError, open_source

    try:
        take = Take.open(args.take)
        source = open_source(args.source)
    except (TakeError, SourceError) as e:
        raise CommandError(str(e), 2) from None
    frames = [f for f in source.frames if f in take.info.frames and take.is_complete(f)]
    if len(frames) < 2:
        raise CommandError(f"{args.take} and {args.source} share fewer than two complete frames", 2)
    if args.keyframes:
        keys = [int(k) for k in args.keyframes.split(",")]
    else:
        keys = list(take.info.params.get("keyframes") or [])
        if not keys:
            keys = frames[:: int(take.info.params.get("key_interval", 12))]
    positions = [frames.index(k) for k in keys if k in frames]
    color = take.info.layers["color"]
    report = metrics_report((source.read(f)["color"] for f in frames),
                            (decode_layer(color, take.path("color", f).read_bytes()) for f in frames), positions)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for key, value in report.items():
            print(f"{key:>24}: {value:.5g}" if isinstance(value, float) else f"{key:>24}: {value}")
    return 0


# -- keys, stages ----------------------------------------------------------------------------------
def cmd_keys(args) -> int:
    from backend.ipc.auth import allow_client, create_keys

    if args.allow:
        if not args.keys:
            raise CommandError("--allow needs --keys DIR, the server's keys folder", 2)
        dest = allow_client(args.keys, args.allow)
        print(f"allowed {dest.name}: the server at {args.keys} now accepts that client")
        return 0
    if not args.out:
        raise CommandError("give --out DIR to create a key pair, or --allow FILE --keys DIR", 2)
    public, secret = create_keys(args.out, args.name)
    print(f"public key {public}\nsecret key {secret} (keep it private)")
    return 0


def cmd_stages(args) -> int:
    from backend.params import describe
    from backend.stages.base import all_stages

    if args.json:
        print(json.dumps({n: {"summary": s.summary, "params": describe(s.Params)} for n, s in all_stages().items()},
                         indent=1, default=str))
        return 0
    for name, stage in all_stages().items():
        print(f"{name}: {stage.summary}")
        for p in describe(stage.Params):
            extra = f" (one of {', '.join(map(str, p['choices']))})" if p.get("choices") else ""
            print(f"    {p['name']} = {p['default']!r}{extra}  {p.get('help', '')}")
    return 0


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number above 0")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dstage", description="Diffusion Stage backend")
    sub = parser.add_subparsers(dest="command", required=True)

    def key_args(p):
        p.add_argument("--client-key", help="this client's .key_secret file (CURVE)")
        p.add_argument("--server-key", help="the server's public server.key (CURVE)")

    p = sub.add_parser("serve", help="run the backend")
    p.add_argument("--bind", default=DEFAULT_URL)
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--keys", help="folder with server.key_secret and clients/*.key; required off loopback")
    p.add_argument("--no-shm", action="store_true",
                   help="never use shared memory with same-machine clients (also: DSTAGE_SHM=0)")
    p.add_argument("--models", help="model config file (JSON)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when torch sees a GPU)")
    p.add_argument("--max-message-mb", type=positive_float, default=1024.0,
                   help="refuse messages larger than this (MiB); a single frame part over it drops the peer")
    p.add_argument("--store-max-gb", type=positive_float,
                   help="after each job, remove the least recently used jobs until the store fits (see `store gc`)")
    p.add_argument("--stop-grace", type=float, default=10.0, metavar="SECONDS",
                   help="on SIGTERM, how long the running job may take to reach its next step before it is abandoned")
    p.add_argument("--max-megapixels", type=positive_float,
                   help="refuse jobs with larger frames (default: 50, less on a machine with under 13 GB of memory)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run jobs on a Ray cluster: auto (RAY_ADDRESS's head, else one on this machine), host:6379 or ray://host:10001; "
                        "--store must be a path every node shares")
    p.add_argument("--cluster-workers", type=positive_int, metavar="N",
                   help="with --cluster and no GPUs in it: how many CPU workers (default 1; with GPUs, one per GPU)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ping", help="check that a backend answers")
    p.add_argument("--server", default=DEFAULT_URL)
    p.add_argument("--timeout", type=float, default=5.0)
    key_args(p)
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("run", help="run one stage over frames into a take folder")
    p.add_argument("stage")
    p.add_argument("--in", dest="input", required=True, help="folder of numbered images, video file or take")
    p.add_argument("--out", required=True, help="take folder to write")
    p.add_argument("--server", help="run through this backend (default: embedded in this process)")
    p.add_argument("--store", default=DEFAULT_STORE, help="job store for embedded runs")
    p.add_argument("--frames", help="frame range FIRST-LAST")
    p.add_argument("--allow-gaps", action="store_true", help="run a sequence with missing frame numbers as it is")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a stage parameter")
    p.add_argument("--side", action="append", default=[], metavar="NAME=PATH",
                   help="a side input (e.g. keyframes=FOLDER): uploaded with the frames; `dstage stages` lists them")
    p.add_argument("--max-megapixels", type=positive_float, default=DEFAULT_MAX_MEGAPIXELS,
                   help="refuse frames larger than this, read from each file's header before decoding")
    p.add_argument("--store-max-gb", type=positive_float,
                   help="after the run, remove the least recently used jobs until the store fits")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds of silence before reconnecting")
    p.add_argument("--retries", type=int, default=5,
                   help="reconnects in a row without an answer before giving up (with --server)")
    p.add_argument("--models", help="model config file (JSON)")
    key_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("keys", help="create CURVE key pairs, or allow a client")
    p.add_argument("--out", help="folder for the new key pair")
    p.add_argument("--name", default="server", help="key name: 'server' for the backend, any other for a client")
    p.add_argument("--allow", help="a client's public .key to accept")
    p.add_argument("--keys", help="the server's keys folder (with --allow)")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("models", help="the model config: which weights are here, how to get the others")
    models_sub = p.add_subparsers(dest="models_command", required=True)
    p = models_sub.add_parser("check", help="list every role, where its weights are or how to get them")
    p.add_argument("--models", help="model config file (JSON); default $DSTAGE_MODELS or ~/.config/diffusion-stage")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_check)

    p = models_sub.add_parser("fetch", help="download the models the config names (where allow_download is on)")
    p.add_argument("--models", help="model config file (JSON); default $DSTAGE_MODELS or ~/.config/diffusion-stage")
    p.add_argument("--role", action="append", default=[], help="only this role (repeatable); default: every "
                                                                  "configured role")
    p.add_argument("--dry-run", action="store_true", help="print the plan, download nothing")
    p.set_defaults(func=cmd_models_fetch)

    p = sub.add_parser("store", help="the job store: remove old jobs")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    p = store_sub.add_parser("gc", help="remove jobs unused for N days, or the oldest beyond N GB; never a running one")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--keep-days", type=positive_float, help="keep jobs used in the last N days")
    p.add_argument("--max-gb", type=positive_float, help="keep the most recently used jobs that fit in N GB")
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    p.set_defaults(func=cmd_store_gc)

    p = sub.add_parser("metrics", help="temporal metrics of a take against its source footage")
    p.add_argument("--take", required=True)
    p.add_argument("--source", required=True, help="the footage the take was made from")
    p.add_argument("--keyframes", help="keyframe numbers, comma separated (default: from take.json)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("stages", help="list stages and their parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stages)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # frames reuse the last frame's buffers (see backend/memory.py)
    # `kill` ends a command like Ctrl-C does: its cleanup runs (shared memory unlinked, the job cancelled)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except CommandError as e:
        message, status = str(e), e.status
    except KeyboardInterrupt:
        message, status = "interrupted", INTERRUPTED
    except BrokenPipeError:  # the output went to a pager or `head` that closed: nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # the one place every other error becomes one line and an exit status
        if debug():
            raise
        message, status = explain(e)
    print(f"\ndstage: {message}" if sys.stderr.isatty() else f"dstage: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
