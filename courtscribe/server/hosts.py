"""The Host a request names must be one of this server's (Django's ALLOWED_HOSTS): a page whose own
name was re-pointed at this server (DNS rebinding) sends Host and Origin of its own name, which the
origin check alone would take for the server's own pages."""
from __future__ import annotations

import ipaddress
import json
import socket

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def allowed_hosts(configured: list[str], bind: str) -> frozenset[str] | None:
    """The names a Host header may carry (lower case, no port); None: any (``*`` configured)."""
    if "*" in configured:
        return None
    if configured:
        return frozenset(h.lower().strip("[]") for h in configured)
    names = set(LOOPBACK)
    if bind not in LOOPBACK:
        names.add(bind.strip("[]"))
    if bind in ("0.0.0.0", "::", ""):  # every interface: the machine's own names and addresses
        import psutil

        names |= {socket.gethostname(), socket.getfqdn()}
        names |= {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs
                  if a.family in (socket.AF_INET, socket.AF_INET6)}
    return frozenset(n.lower() for n in names if n)


def host_of(header: str) -> str:
    """``name:port``, ``[v6]:port`` or a bare name/address → the name or address, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    try:
        return str(ipaddress.ip_address(header))  # a bare IPv6 address has colons of its own
    except ValueError:
        return header.rsplit(":", 1)[0] if ":" in header else header


class HostCheck:
    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hosts is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = host_of(dict(scope["headers"]).get(b"host", b"").decode("latin-1"))
        if host in self.hosts:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":  # refused before it is accepted: the handshake gets 403
            await send({"type": "websocket.close", "code": 4403, "reason": "unknown host"})
        else:
            body = json.dumps({"detail": {"code": "bad_host", "message": f"host {host!r} is not this server's "
                                                                           "(COURTSCRIBE_ALLOWED_HOSTS)"}}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
