"""Blender suite process handling.

bpy 4.5 can hang for many minutes at interpreter exit (its atexit teardown, after the tests have
finished), so once pytest has reported, the process ends at once with pytest's own exit status.
"""

from __future__ import annotations

import os
import sys


def pytest_unconfigure(config):
    if getattr(config, "workerinput", None) is not None:
        return  # an xdist worker: its controller decides
    status = getattr(config, "_dstage_exit_status", None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def pytest_sessionfinish(session, exitstatus):
    session.config._dstage_exit_status = int(exitstatus)
