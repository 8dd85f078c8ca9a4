"""The node's CNI daemon: the plugins' ADD/DEL/CHECK done in a long-running process.

A plugin executable on a node is a thin client (:mod:`labctl.cni.shim`) that
forwards its ``CNI_*`` environment and stdin over a unix socket; this server runs
the very same plugin code (:mod:`labctl.cni.bridge`, :mod:`labctl.cni.portmap`,
:mod:`labctl.cni.ipam.plugin`) through :func:`labctl.cni.skel.run`, so results and
error JSON are byte for byte what the plugin process would print. What changes is
the cost: the kernel work is a handful of netlink requests (:mod:`labctl.cni.netlink`,
on plain sockets: :mod:`labctl.cni.rtnl`) instead of ``ip`` execs, and
``labctl-host-local`` is a library call instead of a second interpreter. Each call
runs in its own thread; IPAM stays safe across threads and processes (its ``flock``
is taken on a fresh open file per call) and across a restart (the reservations are files).

The node agent starts it (:func:`start`) before the first pod, on the socket its
plugin executables name (``/run/labctl/cni.sock``). It serves only callers in its
own network namespace: a plugin run in another one (``nsenter --net=...`` by hand)
gets ``fallback`` and does the work itself.
"""

from __future__ import annotations

import io
import logging
import os
import socketserver
import threading

from labctl.cni import bridge, netlink, portmap, shim, skel
from labctl.cni.ipam import plugin as ipam_plugin

log = logging.getLogger("labctl.cni.daemon")

#: the daemon's way of doing labctl-bridge: netlink, and labctl-host-local in-process
BACKEND = bridge.Backend(netlink, {"labctl-host-local": ipam_plugin.plugin_funcs()})
PLUGINS = {"labctl-bridge": bridge.plugin_funcs(BACKEND), "labctl-host-local": ipam_plugin.plugin_funcs(),
           "labctl-portmap": portmap.plugin_funcs()}
#: a request is the config plus a few env vars; anything larger is sent back to do the work itself
MAX_REQUEST = 4 << 20
READ_TIMEOUT_S = 10.0


def answer(data: bytes, own_netns: bytes) -> bytes:
    """Run one request's plugin call; return the answer bytes (pure apart from the call itself)."""
    try:
        plugin, netns, env, stdin_data = shim.decode_request(data)
    except ValueError:
        return shim.FALLBACK + b"\0"
    funcs = PLUGINS.get(plugin)
    if funcs is None or netns != own_netns:
        return shim.FALLBACK + b"\0"
    out, err = io.StringIO(), io.StringIO()
    code = skel.run(funcs, env, io.BytesIO(stdin_data), out, err)
    return shim.encode_answer(code, out.getvalue(), err.getvalue())


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.settimeout(READ_TIMEOUT_S)
        chunks, size = [], 0
        while size <= MAX_REQUEST:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        server: Server = self.server  # type: ignore[assignment]
        if size > MAX_REQUEST:  # not what a plugin sends: let it do the work itself
            sock.sendall(shim.FALLBACK + b"\0")
            return
        sock.sendall(answer(b"".join(chunks), server.own_netns))


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The unix socket server; one thread per call."""

    daemon_threads = True
    request_queue_size = 128  # a 50-pod burst connects at once

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # a previous agent's socket: nobody listens on it any more
        self.path = path
        self.own_netns = shim.netns_id()
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)

    def handle_error(self, request: object, client_address: object) -> None:
        log.exception("CNI daemon: call failed")

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self.shutdown()
        self.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def start(path: str) -> Server:
    """Serve on unix socket ``path`` in a thread of this process."""
    server = Server(path)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="cni-daemon", daemon=True).start()
    log.info("CNI daemon listening on %s", server.path)
    return server


def main() -> None:
    """``python -m labctl.cni.daemon SOCKET``: serve in the foreground (tests, the benchmark)."""
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m labctl.cni.daemon SOCKET")
    server = Server(sys.argv[1])
    print(f"listening on {server.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        os.unlink(server.path)


if __name__ == "__main__":
    main()
