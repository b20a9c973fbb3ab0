"""Every bad input or failed job ends `dstage` with one line, `dstage: <what>, <where>, <the fix>`, the
documented exit status (2 bad input, 1 failed job; the same embedded and through a server), no traceback,
and `--out` as it was before the run."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import OpenEXR
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from spine_fixtures import PYTHON, REPO, Backend, dstage, env, frame_files, free_port, write_frames  # noqa: E402

from backend.cli import main  # noqa: E402


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("dstage: "), stderr
    return line


def run_here(capsys, *args) -> tuple[int, str]:
    status = main(["run", *args])
    return status, one_line(capsys.readouterr().err)


# -- header bombs ----------------------------------------------------------------------------------
def png_bomb(path: Path, width: int = 20000, height: int = 20000) -> None:
    """A ~1 MB PNG whose header claims width x height RGB pixels (a decoder would allocate 1.2 GB first)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    filler = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"prVt", filler)
                     + chunk(b"IDAT", zlib.compress(bytes(1 << 20))) + chunk(b"IEND", b""))


def jpeg_bomb(path: Path) -> None:
    ok, data = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(data.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", 20000, 20000)  # height, width
    path.write_bytes(bytes(data))


def exr_bomb(path: Path) -> None:
    OpenEXR.File({"compression": OpenEXR.NO_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"Y": np.zeros((1, 1), np.float32)}).write(str(path))
    data = bytearray(path.read_bytes())
    at = data.index(b"dataWindow\0box2i\0") + len(b"dataWindow\0box2i\0") + 4
    data[at: at + 16] = struct.pack("<iiii", 0, 0, 19999, 19999)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make, name", [(png_bomb, "0001.png"), (jpeg_bomb, "0001.jpg"), (exr_bomb, "0001.exr")])
def test_a_header_bomb_is_refused_in_under_a_second_without_allocating(tmp_path, capsys, make, name):
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder / name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    status, line = run_here(capsys, "matte", "--in", str(folder), "--out", str(tmp_path / "take"),
                            "--store", str(tmp_path / "store"))
    assert time.perf_counter() - start < 1.0
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grew_mb < 100, f"the process grew by {grew_mb:.0f} MB refusing a header"
    assert status == 2
    for words in (name, "20000x20000", "400.0 MP", "50 MP", "--max-megapixels"):
        assert words in line, line
    assert not (tmp_path / "take").exists()


def test_the_budget_is_raised_by_its_flag(tmp_path, capsys):
    folder = write_frames(tmp_path / "in", 2, 64)
    status, line = run_here(capsys, "matte", "--in", str(folder), "--out", str(tmp_path / "take"),
                            "--store", str(tmp_path / "store"), "--max-megapixels", "0.001")
    assert status == 2 and "64x64" in line and "0.001 MP" in line
    assert main(["run", "matte", "--in", str(folder), "--out", str(tmp_path / "take"), "--store",
                 str(tmp_path / "store"), "--max-megapixels", "0.005"]) == 0


# -- bad inputs, in this process ---------------------------------------------------------------------
def mixed_sizes(folder: Path) -> None:
    write_frames(folder, 2, 64)
    cv2.imwrite(str(folder / "0003.png"), np.zeros((48, 48, 3), np.uint8))


def truncated(folder: Path) -> None:
    write_frames(folder, 3, 64)
    data = (folder / "0002.png").read_bytes()
    (folder / "0002.png").write_bytes(data[: len(data) // 2])


def gap(folder: Path) -> None:
    write_frames(folder, 2, 64)
    write_frames(folder, 2, 64, start=5)


def two_sequences(folder: Path) -> None:
    write_frames(folder, 2, 64)
    for i in (1, 2):
        shutil.copy(folder / f"{i:04d}.png", folder / f"other_{i:04d}.png")


def same_frame_twice(folder: Path) -> None:
    write_frames(folder, 2, 64)
    shutil.copy(folder / "0002.png", folder / "002.png")


def tiny(folder: Path) -> None:
    folder.mkdir()
    for i in (1, 2):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.zeros((8, 8, 3), np.uint8))


def plain(folder: Path) -> None:
    write_frames(folder, 2, 64)


@pytest.mark.parametrize("make, args, words", [
    (mixed_sizes, [], ["0003.png is 48x48", "starts at 64x64", "one size"]),
    (truncated, [], ["0002.png could not be decoded", "truncated", "re-export"]),
    (gap, [], ["frames 3-4 missing between 2 and 5", "--frames", "--allow-gaps"]),
    (two_sequences, [], ["more than one image sequence", "other_#.png", "own folder"]),
    (same_frame_twice, [], ["frame 2 appears twice", "0002.png", "002.png"]),
    (tiny, [], ["8x8 px", "16 px", "scale the footage up"]),
    (plain, ["--set", "refine.grow=inf"], ["refine.grow", "finite", "'inf'"]),
    (plain, ["--out", "{in}"], ["--out", "same folder as --in"]),
    (plain, ["--out", "{in}/take"], ["inside --in", "outside the input"]),
    (plain, ["--out", "{tmp}/a_file"], ["a_file is a file", "folder"]),
    (plain, ["--side", "keyframes={in}"], ["reads no side input 'keyframes'", "drop it"]),
    (plain, ["--side", "no-equals"], ["--side 'no-equals'", "NAME=PATH"]),
    (plain, ["--stage", "propagate", "--set", "keyframes_from=folder"], ["needs the side input 'keyframes'",
                                                                        "--side keyframes="]),
], ids=["mixed-sizes", "truncated", "gap", "two-sequences", "same-frame-twice", "under-16px", "grow-inf",
        "out-is-in", "out-inside-in", "out-is-a-file", "unused-side", "bad-side", "missing-side"])
def test_each_bad_input_gets_one_line_and_status_2(tmp_path, capsys, make, args, words):
    folder = tmp_path / "in"
    make(folder)
    (tmp_path / "a_file").write_text("not a folder")
    stage = "matte"
    if args[:1] == ["--stage"]:
        stage, args = args[1], args[2:]
    args = [a.replace("{in}", str(folder)).replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "take")]
    before = {str(p): p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    status, line = run_here(capsys, stage, "--in", str(folder), "--store", str(tmp_path / "store"), *args)
    assert status == 2, line
    for word in words:
        assert word in line, f"{word!r} missing from: {line}"
    assert not (tmp_path / "take").exists()
    after = {str(p): p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "store" not in p.parts}
    assert after == {k: v for k, v in before.items() if "store" not in Path(k).parts}, "the run touched its inputs"


def test_a_gap_runs_when_allowed(tmp_path, capsys):
    gap(tmp_path / "in")
    assert main(["run", "matte", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "take"), "--store",
                 str(tmp_path / "store"), "--allow-gaps"]) == 0
    assert sorted(p.name for p in (tmp_path / "take" / "alpha").iterdir()) == ["0001.png", "0002.png", "0005.png",
                                                                               "0006.png"]


# -- bad inputs a process meets -------------------------------------------------------------------------
def test_an_unreadable_folder_is_named(tmp_path):
    folder = write_frames(tmp_path / "in", 2, 64)
    os.chmod(folder, 0)
    # root reads any folder: run without the two capabilities that let it (still root, owner of the rest)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    if drop and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: no way to make a folder unreadable")
    try:
        result = subprocess.run([*drop, PYTHON, "-m", "backend.cli", "run", "matte", "--in", str(folder), "--out",
                                 str(tmp_path / "take"), "--store", str(tmp_path / "store")], cwd=REPO, env=env(),
                                capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(folder, 0o755)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert f"cannot read the input folder {folder}: permission denied" in line and "read access" in line


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB file system (tmpfs) when this user may mount one, else None."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def noise_frames(folder: Path, count: int, size: int = 160) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(1, count + 1):  # noise: each frame's PNG is about as large as its pixels
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def test_a_full_disk_in_embedded_mode_fails_cleanly_and_the_rerun_works(tmp_path, small_disk):
    folder = noise_frames(tmp_path / "in", 12)
    if small_disk is not None:  # --out on a 1 MiB disk: it fills after a few frames
        out = small_disk / "take"
        result = dstage("run", "matte", "--in", str(folder), "--out", str(out), "--store", str(tmp_path / "store"))
    else:  # no mount here: the kernel's file-size limit makes the writes fail the same way (EFBIG)
        out = tmp_path / "take"
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
        result = dstage("run", "matte", "--in", str(folder), "--out", str(out), "--store", str(tmp_path / "store"),
                        preexec_fn=limit)
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert "no space left writing" in line and "free space" in line, line
    assert not out.exists(), "a failed run leaves --out as it was (absent)"
    if small_disk is not None:
        assert not any(small_disk.iterdir())
    rerun = dstage("run", "matte", "--in", str(folder), "--out", str(tmp_path / "elsewhere"), "--store",
                   str(tmp_path / "store"))
    assert rerun.returncode == 0, rerun.stderr
    assert len(list((tmp_path / "elsewhere" / "alpha").iterdir())) == 12


def test_ping_with_a_missing_key_file(tmp_path):
    result = dstage("ping", "--server", f"tcp://127.0.0.1:{free_port()}", "--client-key", str(tmp_path / "me.key_secret"),
                    "--server-key", str(tmp_path / "server.key"))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "me.key_secret does not exist" in line and "dstage keys" in line


def test_serve_on_a_busy_port_or_a_store_that_is_a_file(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dstage("serve", "--bind", f"tcp://127.0.0.1:{port}", "--store", str(tmp_path / "store"), timeout=60)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"--bind tcp://127.0.0.1:{port} is already in use" in line and "another port" in line
    (tmp_path / "file").write_text("x")
    result = dstage("serve", "--bind", f"tcp://127.0.0.1:{free_port()}", "--store", str(tmp_path / "file"), timeout=60)
    assert result.returncode == 2
    assert "--store" in one_line(result.stderr) and "is a file" in result.stderr


def test_a_library_error_through_the_server_and_embedded_is_one_line_and_out_stays_clean(tmp_path):
    """OpenCV's own error (an integer code) ends the job with status 1 and a message, never AttributeError; the
    failed run leaves no take behind, and the corrected command runs into the same folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(1, 5):
        image = np.full((40, 40, 3), 90, np.uint8)
        cv2.circle(image, (10 + 4 * i, 20), 6, (250, 250, 250), -1)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    bad = ["--set", "flow_scale=0.25", "--set", "detect_cuts=false"]  # flow at 10 px: below what DIS accepts
    out = tmp_path / "take"
    backend = Backend(tmp_path / "server_store").start()
    try:
        remote = dstage("run", "propagate", "--in", str(folder), "--out", str(out), "--server", backend.url, *bad)
        assert remote.returncode == 1, remote.stderr
        line = one_line(remote.stderr)
        assert "OpenCV failed" in line and "width or height >= 12" in line and "[stage_failed]" in line, line
        assert not out.exists()
        fixed = dstage("run", "propagate", "--in", str(folder), "--out", str(out), "--server", backend.url,
                       "--set", "detect_cuts=false")
        assert fixed.returncode == 0, fixed.stderr
        assert backend.proc.poll() is None  # and the server keeps serving
    finally:
        backend.stop()
    embedded = dstage("run", "propagate", "--in", str(folder), "--out", str(tmp_path / "embedded"), "--store",
                      str(tmp_path / "store"), *bad)
    assert embedded.returncode == 1
    assert "stage propagate failed: OpenCV failed" in one_line(embedded.stderr)
    assert not (tmp_path / "embedded").exists()
    assert main(["run", "propagate", "--in", str(folder), "--out", str(tmp_path / "embedded"), "--store",
                 str(tmp_path / "store"), "--set", "detect_cuts=false"]) == 0
    assert frame_files(tmp_path / "embedded") == frame_files(out)


def test_a_failed_run_into_an_existing_take_removes_only_what_it_added(tmp_path, capsys):
    from backend.out_folder import OutFolder

    folder = write_frames(tmp_path / "in", 3, 64)
    out = tmp_path / "take"
    assert main(["run", "matte", "--in", str(folder), "--out", str(out), "--store", str(tmp_path / "store"),
                 "--frames", "1-2"]) == 0
    (out / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    guard = OutFolder(out)
    (out / "alpha" / "0003.png").write_bytes(b"added by the run")
    (out / "depth").mkdir()
    (out / "depth" / "0001.png").write_bytes(b"added too")
    guard.restore()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (out / "depth").exists()
    nested = OutFolder(tmp_path / "new" / "deeper" / "take")
    (tmp_path / "new" / "deeper" / "take" / "color").mkdir(parents=True)
    nested.restore()
    assert not (tmp_path / "new").exists()  # the folders the run created, up to the first that existed
