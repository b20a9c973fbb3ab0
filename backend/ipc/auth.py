"""CURVE keys: who may talk to a backend that listens beyond this machine.

A server needs its key pair (`server.key_secret`) and a folder of allowed client public keys
(`clients/*.key`); a client needs its own pair and the server's public key. `dstage keys` makes them.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth


class AuthError(ValueError):
    """Missing or unusable keys; the message says which file and how to make it."""


def is_loopback(url: str) -> bool:
    """True for addresses only this machine can reach (loopback TCP, ipc, inproc)."""
    scheme = url.split("://", 1)[0]
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_keys(folder: str | Path, name: str) -> tuple[Path, Path]:
    """Create `<name>.key` (public) and `<name>.key_secret` in `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(folder), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def allow_client(keys_dir: str | Path, client_public: str | Path) -> Path:
    """Copy a client's public key into the server's allowed clients folder."""
    dest = Path(keys_dir) / "clients"
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(client_public, dest))


def load_pair(secret_file: str | Path) -> tuple[bytes, bytes]:
    path = Path(secret_file)
    if not path.is_file():
        raise AuthError(f"key file {path} does not exist; create one with `dstage keys --out {path.parent}`")
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise AuthError(f"{path} holds no secret key; pass the .key_secret file, not the public .key")
    return public, secret


def load_public(public_file: str | Path) -> bytes:
    path = Path(public_file)
    if not path.is_file():
        raise AuthError(f"public key {path} does not exist; copy the server's server.key from its keys folder")
    public, _ = zmq.auth.load_certificate(str(path))
    return public


class ServerKeys:
    """A server's secret key and the folder of client public keys it accepts."""

    def __init__(self, keys_dir: str | Path):
        self.dir = Path(keys_dir)
        self.public, self.secret = load_pair(self.dir / "server.key_secret")
        self.clients_dir = self.dir / "clients"
        if not self.clients_dir.is_dir() or not any(self.clients_dir.glob("*.key")):
            raise AuthError(
                f"{self.clients_dir} holds no client public keys; add one with "
                f"`dstage keys --out DIR --name artist` then `dstage keys --allow DIR/artist.key --keys {self.dir}`"
            )

    def _clients_state(self) -> tuple:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in self.clients_dir.glob("*.key")))
        except OSError:
            return ()

    def clients_changed(self) -> bool:
        """Whether a client key was added, removed or rewritten since the last (re)load."""
        return self._clients_state() != self._loaded

    def reload(self, auth: zmq.auth.Authenticator) -> None:
        """Read clients/ again: a removed key is refused from its next handshake (connections already
        made stay until they drop)."""
        self._loaded = self._clients_state()
        auth.configure_curve(domain="*", location=str(self.clients_dir))

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_server = True
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public

    def authenticator(self, context: zmq.Context) -> zmq.auth.Authenticator:
        """A ZAP handler the server polls on its own thread (no hidden thread)."""
        auth = zmq.auth.Authenticator(context)
        auth.start()
        self._loaded = self._clients_state()
        auth.configure_curve(domain="*", location=str(self.clients_dir))
        return auth


def answer_zap(auth: zmq.auth.Authenticator) -> None:
    """Answer one pending ZAP (handshake) request on the caller's thread.

    pyzmq 25+ made `handle_zap_message` a coroutine: called plainly it does nothing and every CURVE
    handshake hangs. With a keys folder it never waits on anything, so running it to the end here is quick.
    """
    result = auth.handle_zap_message(auth.zap_socket.recv_multipart())
    if inspect.iscoroutine(result):
        asyncio.run(result)


def apply_client_keys(socket: zmq.Socket, client_secret: str | Path, server_public: str | Path) -> None:
    public, secret = load_pair(client_secret)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_serverkey = load_public(server_public)
