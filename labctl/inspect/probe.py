"""The live trace's probe: one TCP connect (its SYN) or one UDP datagram, from a chosen source port.

Standard library only, and runnable as a script: ``labctl trace`` sends this file's source to
a node (``python3 -S -c <source> ARGS``, inside the source pod's network namespace through
``nsenter``), so the probe is the host's version of labctl whatever the node image holds, and
the host runs the same :func:`probe` for ``FROM host``. The fixed source port lets the trace
rules match exactly this packet. A UDP probe to port 53 is a real DNS query (for
``kubernetes.default.svc.<domain>``), so a DNS pod answers it.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time


def probe(protocol: str, dst: str, dport: int, sport: int, timeout: float, domain: str = "cluster.local") -> dict:
    """Send the probe; ``result`` is connected, refused, answered, timeout, unreachable or error."""
    family = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    started = time.monotonic()
    with socket.socket(socket.AF_INET, family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(timeout)
        try:
            s.bind(("", sport))
            if protocol == "tcp":
                s.connect((dst, dport))
                result, detail = "connected", ""
            else:
                s.connect((dst, dport))
                s.send(_dns_query(domain) if dport == 53 else b"labctl-trace\n")
                data = s.recv(4096)
                result, detail = "answered", f"{len(data)} bytes"
        except ConnectionRefusedError:
            result, detail = "refused", "connection refused (a REJECT, or nothing listens on the port)"
        except TimeoutError:
            result, detail = "timeout", f"no answer within {timeout:g}s"
        except OSError as err:
            result = "unreachable" if err.errno in (113, 101) else "error"  # EHOSTUNREACH, ENETUNREACH
            detail = err.strerror or str(err)
    return {"result": result, "detail": detail, "seconds": round(time.monotonic() - started, 4)}


def route_get(dst: str) -> list:
    """The kernel's route for ``dst`` in this network namespace (``ip -j route get``)."""
    try:
        out = subprocess.run(["ip", "-j", "route", "get", dst], capture_output=True, text=True, timeout=5).stdout
        return json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []


def _dns_query(domain: str) -> bytes:
    """A recursion-desired A query for the API server's Service name."""
    name = b"".join(bytes([len(label)]) + label.encode() for label in f"kubernetes.default.svc.{domain}".split("."))
    return struct.pack(">HHHHHH", int.from_bytes(os.urandom(2), "big"), 0x0100, 1, 0, 0, 0) + name + b"\0" \
        + struct.pack(">HH", 1, 1)


def main(argv: list[str]) -> None:
    protocol, dst, dport, sport, timeout = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    domain = argv[5] if len(argv) > 5 else "cluster.local"
    report = {"route": route_get(dst), **probe(protocol, dst, dport, sport, timeout, domain)}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
