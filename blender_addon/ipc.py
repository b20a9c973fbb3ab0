"""The wire and take code the add-on shares with the backend (backend/ipc).

A packaged add-on carries its own copy in `vendor/dstage_ipc` (made by build.py); a checkout of the
repository (development, tests) has none and imports `backend.ipc` itself. Everything in the add-on
reaches that code through this module, so only this file knows where it came from.
"""

import importlib.util

# Only a missing vendored copy means "development checkout"; an ImportError from inside the copy (no
# numpy or pyzmq in this Blender's Python) is the real problem and must reach the artist as it is.
try:
    _VENDORED = importlib.util.find_spec(f"{__package__}.vendor.dstage_ipc") is not None
except ModuleNotFoundError:  # no vendor package at all
    _VENDORED = False

if _VENDORED:  # packaged: the build's vendored copy
    from .vendor.dstage_ipc import auth, client, digest, remote_job, take, wire  # noqa: F401
    SOURCE = "vendored"
else:  # development checkout
    try:
        from backend.ipc import auth, client, digest, remote_job, take, wire  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "backend":
            raise
        raise ImportError("Diffusion Stage: this add-on has neither its vendored wire code (vendor/dstage_ipc) nor a "
                          "repository checkout on sys.path; install the zip that `make addon` builds") from e
    SOURCE = "repository"

Client = client.Client
ClientKeys = client.ClientKeys
RemoteError = client.RemoteError
RemoteJob = remote_job.RemoteJob
Take = take.Take
TakeInfo = take.TakeInfo
TakeError = take.TakeError
Layer = take.Layer
digest_arrays = digest.digest_arrays
digest_json = digest.digest_json
is_loopback = auth.is_loopback
