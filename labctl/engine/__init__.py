"""The one way into the Docker engine, for every part of labctl.

Two clients, each for what it does well, both speaking to the same engine:

- :mod:`.sdk`: the Docker SDK (blocking) for objects — containers, networks, volumes,
  images, archives. :func:`~.sdk.connect` is the only place that opens it, so a stopped
  engine is always the same one-line error with a hint. :func:`~.sdk.tar_of` and
  :func:`~.sdk.read_files` copy files into and out of containers.
- :mod:`.streams`: an asyncio Engine API client for anything that streams — container logs
  and exec sessions (its docstring says why the SDK is not used there).
  :mod:`.exec` runs a command and collects its exit code, stdout and stderr;
  :mod:`.attach` connects this process's terminal to a command (``labctl exec``/``shell``).

A base package: it imports only :mod:`labctl.errors`, and anyone may import it. Import the
submodules (``from labctl.engine.sdk import connect``): this package imports nothing, so a
user of the stream client does not load the SDK.
"""
