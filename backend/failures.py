"""Every known error as one line for the artist, and the exit status it means: the one place that does it.

    dstage: <what went wrong>, <which file or field>, <the fix>

Exit statuses (the same for a run embedded in `dstage` and one through a server):
    0    done
    1    the job failed (a stage error, a full disk, a dead server, an unexpected error)
    2    bad input: a command-line value, a frame, a folder, a parameter, a model config or key file
    130  interrupted (Ctrl-C); run the same command again to finish
"""

from __future__ import annotations

import errno
import os

FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130

# error codes (on the wire and on StageError) that mean the input, not the job, is at fault
_BAD_INPUT_CODES = {"unknown_stage", "model_missing", "model_config", "model_location", "too_large"}
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def exit_status(code: object) -> int:
    """The exit status an error code means: `bad_*` and the codes above are the input's fault (2)."""
    code = str(code)
    return BAD_INPUT if code.startswith("bad") or code in _BAD_INPUT_CODES else FAILED


def explain(exc: BaseException) -> tuple[str, int]:
    """(one-line message, exit status) for any exception; unknown ones still get a line, not a traceback."""
    from backend.errors import StageError
    from backend.imageio import ImageError
    from backend.ipc.take import TakeError
    from backend.params import ParamError
    from backend.sources import SourceError
    from backend.store import StoreError

    if isinstance(exc, (SourceError, ImageError, TakeError)):
        return str(exc), BAD_INPUT
    if isinstance(exc, ParamError):
        return str(exc), BAD_INPUT
    if isinstance(exc, StageError):
        message = str(exc)
        if exc.frame is not None and f"frame {exc.frame}" not in message:
            message += f" (frame {exc.frame})"
        return message, exit_status(exc.code)
    if isinstance(exc, StoreError):
        return str(exc), exit_status(exc.code)
    return failure_message(exc), _library_status(exc)


def failure_message(exc: BaseException) -> str:
    """The message for an OS or library error (no code of ours): what, which file, and the fix."""
    if isinstance(exc, OSError) and not _is_zmq(exc):
        return _os_message(exc)
    if _is_zmq(exc):
        return _zmq_message(exc)
    if isinstance(exc, MemoryError):
        return ("out of memory; lower the frame size or the pixel budget (--max-megapixels), "
                "or free memory on this machine")
    name = type(exc).__name__
    text = str(exc).strip().splitlines()
    detail = text[-1] if text else ""
    if type(exc).__module__.startswith("cv2") or name == "error" and "OpenCV" in str(exc):
        return f"OpenCV failed: {detail or exc}; check the frames and parameters (dstage stages lists them)"
    if type(exc).__module__ in ("backend.ipc.auth", "backend.ipc.wire"):
        return str(exc)  # written for the artist already
    return (f"unexpected {name}: {detail}; run again with DSTAGE_DEBUG=1 for the traceback and report it"
            if detail else f"unexpected {name}; run again with DSTAGE_DEBUG=1 for the traceback and report it")


def _library_status(exc: BaseException) -> int:
    if type(exc).__module__ == "backend.ipc.auth":
        return BAD_INPUT
    if _is_zmq(exc):
        return BAD_INPUT if getattr(exc, "errno", None) in (errno.EADDRINUSE, errno.EINVAL, errno.EPROTONOSUPPORT) \
            else FAILED
    if isinstance(exc, OSError):
        if exc.errno in _NO_SPACE:
            return FAILED
        return BAD_INPUT if isinstance(exc, (PermissionError, FileNotFoundError, NotADirectoryError,
                                             IsADirectoryError, FileExistsError)) else FAILED
    return FAILED


def _os_message(exc: OSError) -> str:
    path = exc.filename or "a file"
    if exc.errno in _NO_SPACE:
        return (f"no space left writing {path} ({exc.strerror}); free space on that disk, or point --store / "
                "--out at a disk with room, then run the same command again")
    if isinstance(exc, PermissionError):
        return f"permission denied on {path}; give this user access to it, or choose another path"
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist; check the path"
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return f"{path} is a file where a folder is needed; give a folder path, or move the file away"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder where a file is needed; give a file path"
    return f"{exc.strerror or exc} on {path}; check the disk and the path"


def _is_zmq(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("zmq")


def _zmq_message(exc: BaseException) -> str:
    number = getattr(exc, "errno", None)
    if number == errno.EADDRINUSE:
        return "the address is already in use by another process; stop it, or choose another --bind port"
    if number in (errno.EINVAL, errno.EPROTONOSUPPORT):
        return f"{exc}; addresses look like tcp://HOST:PORT or ipc:///path/to/socket"
    return f"ZeroMQ: {exc}; check the address and the network"


def debug() -> bool:
    """DSTAGE_DEBUG=1: let the traceback through, for a bug report."""
    return os.environ.get("DSTAGE_DEBUG", "") not in ("", "0")
