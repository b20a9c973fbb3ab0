"""The wire and take code the add-on shares with the backend (backend/ipc).

A packaged add-on carries its own copy in `vendor/dstage_ipc` (made by build.py); a checkout of the
repository (development, tests) has none and imports `backend.ipc` itself. Everything in the add-on
reaches that code through this module, so only this file knows where it came from.
"""

try:  # packaged: the build's vendored copy
    from .vendor.dstage_ipc import client, digest, remote_job, take, wire  # noqa: F401
    SOURCE = "vendored"
except ImportError:  # development checkout
    from backend.ipc import client, digest, remote_job, take, wire  # noqa: F401
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
