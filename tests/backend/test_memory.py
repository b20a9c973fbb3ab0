"""The backend process keeps freed frame buffers: a frame's allocations reuse the last frame's pages."""

import subprocess
import sys
from pathlib import Path

import pytest

# Two threads allocating and freeing frame-sized arrays, as the propagator's two sides do; prints the page
# faults it cost. Run in fresh interpreters: the setting is process-wide and cannot be undone.
WORKLOAD = """
import resource, sys, threading
import numpy as np
if sys.argv[1] == "keep":
    from backend.memory import keep_freed_memory
    assert keep_freed_memory()
def frames():
    for _ in range(30):
        buffers = [np.ones(n, np.float32) for n in (300_000, 1_500_000, 500_000, 2_000_000)]
        del buffers
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=frames) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", WORKLOAD, mode], capture_output=True, text=True, check=True, cwd=root)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_kept_buffers_are_not_faulted_in_again_each_frame():
    default, kept = page_faults("default"), page_faults("keep")
    # 60 frames of 17 MB: by default glibc unmaps and trims, and every frame faults its pages in anew.
    assert default > 20_000
    assert kept < default / 5
