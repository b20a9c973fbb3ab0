"""Shared memory for peers on one machine: a big array crosses as one copy into memory the peer has already
mapped, instead of through the socket (loopback TCP costs two kernel copies each way, about 4x a memcpy).

Each side of a connection owns one arena, a file in /dev/shm: it writes there (`Outbox`) and the peer maps
it (`Inbox`). Why an arena and not a file per message: a new tmpfs page costs microseconds to allocate and
free (measured on the dev VM: a fresh 33 MB segment per frame made a round trip 3x *slower* than TCP);
an arena's pages are allocated once, then reused, so a send is one warm memcpy.

Layout: one header page (16 bytes of token, which proves the peer mapped *this* file; a byte the peer sets
once attached; then one busy byte per slot), then slots: page-aligned ranges, each holding one array at a
time. The owner sets a slot's busy byte when it writes an array there; the peer clears it when the last
numpy view of that array is gone; only then does the owner reuse the slot. The peer unlinks the name as soon
as it has mapped it, so nothing stays in /dev/shm; the memory goes when both sides have unmapped it.

Linux only (feature-detected by `available()`); elsewhere, and whenever anything here fails, arrays travel
inline in the message as before. DSTAGE_SHM=0 turns it off.
"""

from __future__ import annotations

import mmap
import os
import re
import secrets
import stat
import sys
import weakref

import numpy as np

from backend.ipc.wire import WireError

SHM_DIR = "/dev/shm"
NAME = re.compile(r"dstage-[0-9a-f]{32}\Z")   # ours, and no path separators or dots by construction
HEADER = 4096
TOKEN = 16
ATTACHED = 16
BUSY = 64
MAX_SLOTS = 256
THRESHOLD = 1 << 20          # smaller arrays stay inline: copying them through the socket is cheap
ARENA_BYTES = 4 << 30        # address space, not memory: pages are allocated only as slots are first used
MAX_ARENA_BYTES = 64 << 30   # what a receiver agrees to map
ALIGN = 4096


def available() -> bool:
    """POSIX shared memory through /dev/shm (Linux), and not turned off with DSTAGE_SHM=0."""
    if os.environ.get("DSTAGE_SHM", "1").strip().lower() in ("0", "off", "no", "false"):
        return False
    return (sys.platform.startswith("linux") and hasattr(os, "posix_fallocate") and os.path.isdir(SHM_DIR)
            and os.access(SHM_DIR, os.W_OK | os.X_OK))


def is_local(url: str) -> bool:
    """Endpoints whose peer may share our /dev/shm (the probe still decides): loopback TCP and ipc."""
    if url.startswith("ipc://"):
        return True
    if not url.startswith("tcp://"):
        return False
    host = url[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def _capacity(nbytes: int) -> int:
    """Slot size for an array: rounded up (to an eighth of its power of two, at least a page) so that the
    next frame of about the same size, say a PNG a little bigger than the last, reuses the slot."""
    step = max(ALIGN, (1 << (nbytes.bit_length() - 1)) // 8)
    return -(-nbytes // step) * step


class Outbox:
    """The arena this side writes; `offer()` goes in the hello/welcome for the peer to attach."""

    threshold = THRESHOLD

    def __init__(self, size: int = ARENA_BYTES):
        self.name = f"dstage-{secrets.token_hex(16)}"
        self.path = os.path.join(SHM_DIR, self.name)
        self.size = size
        self.token = secrets.token_bytes(TOKEN)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(self.fd, size)
            os.posix_fallocate(self.fd, 0, HEADER)
            self.map = mmap.mmap(self.fd, size)
        except BaseException:
            os.close(self.fd)
            os.unlink(self.path)
            raise
        self.map[:TOKEN] = self.token
        # a client nobody closes: its name goes at garbage collection or exit at the latest
        self._unlink_at_exit = weakref.finalize(self, _unlink, self.path)
        self.slots: list[tuple[int, int]] = []   # (offset, capacity): ours only, never read back from the file
        self.end = HEADER
        self.closed = False

    def offer(self) -> dict:
        return {"arena": self.name, "size": self.size, "token": self.token.hex()}

    @property
    def attached(self) -> bool:
        return not self.closed and self.map[ATTACHED] == 1

    def put(self, array: np.ndarray) -> dict | None:
        """Copy a C-contiguous array into a free slot; its reference, or None (send it inline) when full."""
        if self.closed:
            return None
        nbytes = array.nbytes
        slot = self._slot(nbytes)
        if slot is None:
            return None
        offset = self.slots[slot][0]
        self.map[BUSY + slot] = 1
        np.frombuffer(self.map, np.uint8, nbytes, offset)[:] = np.frombuffer(memoryview(array).cast("B"), np.uint8)
        return {"arena": self.name, "slot": slot, "offset": offset, "nbytes": nbytes}

    def release(self, slot: int) -> None:
        """For a message that was never sent: the peer will not clear its busy byte."""
        if not self.closed:
            self.map[BUSY + slot] = 0

    def _slot(self, nbytes: int) -> int | None:
        free = [i for i, (_, cap) in enumerate(self.slots) if cap >= nbytes and self.map[BUSY + i] == 0]
        snug = [i for i in free if self.slots[i][1] <= 2 * _capacity(nbytes)]
        if snug:
            return min(snug, key=lambda i: self.slots[i][1])
        cap = _capacity(nbytes)
        if len(self.slots) < MAX_SLOTS and self.end + cap <= self.size:
            try:
                os.posix_fallocate(self.fd, self.end, cap)  # now, so a full /dev/shm is an error, not a SIGBUS
            except OSError:
                return min(free, key=lambda i: self.slots[i][1]) if free else None
            self.slots.append((self.end, cap))
            self.end += cap
            return len(self.slots) - 1
        return min(free, key=lambda i: self.slots[i][1]) if free else None

    def unlink(self) -> None:
        """Remove the name (the peer never attached, or we are done); mappings stay valid."""
        _unlink(self.path)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.unlink()
        os.close(self.fd)
        try:
            self.map.close()
        except BufferError:  # a view of ours is still alive; the mapping goes with it
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _release(map: mmap.mmap, index: int) -> None:
    if not map.closed:
        map[index] = 0


class Inbox:
    """The peer's arena, mapped from the name in its offer, checked, then unlinked at once."""

    def __init__(self, offer):
        if not isinstance(offer, dict):
            raise WireError("shm_bad_offer", "shared memory offer must be an object {arena, size, token}")
        name, size, token = offer.get("arena"), offer.get("size"), offer.get("token")
        if not isinstance(name, str) or not NAME.match(name):
            raise WireError("shm_bad_name", f"shared memory name {name!r:.80} is not one of ours (dstage-<32 hex>)")
        if type(size) is not int or not HEADER <= size <= MAX_ARENA_BYTES:
            raise WireError("shm_bad_size", f"shared memory size {size!r:.40} is not in {HEADER}..{MAX_ARENA_BYTES}")
        try:
            token = bytes.fromhex(token) if isinstance(token, str) else b""
        except ValueError:
            token = b""
        if len(token) != TOKEN:
            raise WireError("shm_bad_offer", f"shared memory token must be {TOKEN} bytes in hex")
        path = os.path.join(SHM_DIR, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise WireError("shm_missing", f"shared memory {name} is not in this machine's {SHM_DIR} "
                                           "(another container or host?)") from None
        except OSError as e:
            raise WireError("shm_unreadable", f"cannot open shared memory {name}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            # owned by our user: then the peer can open ours too (0o600 both ways), not only we theirs
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise WireError("shm_not_ours", f"shared memory {name} is not a file of this user")
            if st.st_size != size:
                raise WireError("shm_bad_size", f"shared memory {name} has {st.st_size} bytes, the offer says {size}")
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        if self.map[:TOKEN] != token:
            self.map.close()
            raise WireError("shm_bad_token", f"shared memory {name} does not hold the offered token")
        self.map[ATTACHED] = 1
        _unlink(path)
        self.name, self.size = name, size

    def view(self, name: str, ref, dtype: str, shape: list[int], nbytes: int) -> np.ndarray:
        """A read-only array on a slot of the arena, after checking the reference; frees the slot when the
        last view of it is gone."""
        if not isinstance(ref, dict):
            raise WireError("shm_bad_ref", f"array {name!r} has shm {ref!r:.80}; expected {{arena, slot, offset, nbytes}}")
        arena, slot, offset, size = ref.get("arena"), ref.get("slot"), ref.get("offset"), ref.get("nbytes")
        if not isinstance(arena, str) or not NAME.match(arena):
            raise WireError("shm_bad_name", f"array {name!r} names shared memory {arena!r:.80}, not one of ours")
        if arena != self.name:
            raise WireError("shm_unknown_arena", f"array {name!r} is in shared memory {arena} that this side has "
                                                 "not attached (the connection was renegotiated?)")
        if not all(type(v) is int for v in (slot, offset, size)) or not 0 <= slot < MAX_SLOTS:
            raise WireError("shm_bad_ref", f"array {name!r}: slot, offset and nbytes must be integers, slot < {MAX_SLOTS}")
        if size != nbytes:
            raise WireError("size_mismatch", f"array {name!r} declares {dtype}{tuple(shape)} = {nbytes} bytes "
                                              f"but its shared memory holds {size}")
        if offset < HEADER or offset % ALIGN or offset + size > self.size:
            raise WireError("shm_out_of_range", f"array {name!r} at offset {offset} + {size} bytes does not lie in "
                                                f"the {self.size} bytes of shared memory {arena}")
        base = np.frombuffer(self.map, np.uint8, size, offset)
        weakref.finalize(base, _release, self.map, BUSY + slot)
        array = base.view(dtype).reshape(shape)  # its .base is `base` (numpy stops collapsing at the mmap)
        array.flags.writeable = False
        return array
