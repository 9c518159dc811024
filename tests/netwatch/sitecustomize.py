"""Loaded by every Python process started with this folder on PYTHONPATH (tests/test_no_outbound.py):
an audit hook writes each network contact that is not loopback to $NETWATCH_LOG, one JSON line each.
Audit hooks see every socket the interpreter opens (libraries included) and cannot be removed."""
import ipaddress
import json
import os
import socket
import sys

_fd = os.open(os.environ["NETWATCH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) \
    if os.environ.get("NETWATCH_LOG") else None
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a name to resolve: asking DNS is already going out


def _write(entry: dict) -> None:
    os.write(_fd, (json.dumps({**entry, "pid": os.getpid()}, default=repr) + "\n").encode())


def _hook(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args[0], args[-1]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) \
                and not _local(address[0]):
            _write({"event": event, "address": address})
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        if not _local(args[0]):
            _write({"event": event, "host": args[0]})
    elif event == "urllib.Request":
        from urllib.parse import urlsplit
        if not _local(urlsplit(args[0]).hostname):
            _write({"event": event, "url": args[0]})


if _fd is not None:
    _write({"event": "watching", "argv": sys.argv[:3]})
    sys.addaudithook(_hook)
