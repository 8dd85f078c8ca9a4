"""``labctl``: the command line. Thin: each command parses its options and calls the library.

``main()`` is the only place that exits; user errors (:class:`~labctl.errors.LabctlError`)
print as ``ERROR: …`` plus a hint, never as a traceback (unless ``-v``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

import typer
from rich.console import Console

from .. import __version__
from ..errors import LabctlError
from .coercion import skip_plain_coercion
from .exercise import exercise_app
from .net import register as register_network_commands
from .status import Status
from .tui import register as register_tui_command

skip_plain_coercion()  # no pydantic for options that need no coercion
app = typer.Typer(help="Learn Kubernetes networking by touching it: a multi-node lab from Docker containers.",
                  add_completion=False, pretty_exceptions_enable=False)
images_app = typer.Typer(help="Build and list the lab's images (no registry needed).", no_args_is_help=True)
get_app = typer.Typer(help="Show labctl objects.", no_args_is_help=True)
app.add_typer(images_app, name="images")
app.add_typer(get_app, name="get")
register_network_commands(app)  # labctl net, labctl trace
register_tui_command(app)  # labctl tui
app.add_typer(exercise_app, name="exercise")

# tables in a pipe or a log are not cut to 80 columns
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
STATE = {"verbose": 0}

NameOption = typer.Option(None, "--name", "-n", help="the lab's name (default: lab, or the only lab there is)")


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="more detail; tracebacks on errors"),
          version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    STATE["verbose"] = verbose
    if version:
        out.print(f"labctl {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit()


@app.command()
def up(topology: str = typer.Option("default", "--topology", "-t",
                                    help="a topology file, or the name of a shipped one (default, single, large)"),
       name: str | None = typer.Option(None, "--name", "-n", help="the lab's name (default: the topology's, 'lab')"),
       retain: bool = typer.Option(False, "--retain", help="keep the nodes when creation fails, to debug"),
       publish_address: str | None = typer.Option(
           None, "--publish-address",
           help="host address for the API server and port mappings (default: the topology's, 127.0.0.1; "
                "0.0.0.0 inside a VM whose ports are forwarded)"),
       quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors")) -> None:
    """Create a lab: a Docker network, one container per node, an API server for kubectl."""
    from ..cluster import Cancellation, Cancelled
    from ..cluster import up as create_lab
    from ..topology import find_topology, load_topology
    from .interrupts import signals_cancel

    topo = load_topology(find_topology(topology))
    if name:
        topo = topo.with_name(name)
    if publish_address:
        topo = topo.with_publish_address(publish_address)
    status = Status(err, quiet=quiet)
    started = time.monotonic()
    cancellation = Cancellation()
    try:
        # Ctrl-C, kill and a closed terminal stop `up` between two Docker calls, and it rolls back
        with signals_cancel(cancellation):
            if not quiet:
                err.print(f"Creating lab [bold]{topo.name}[/bold] from {topo.source} "
                          f"({len(topo.nodes)} node{'s' if len(topo.nodes) != 1 else ''}) ...", highlight=False)
            with create_lab(topo, status, retain=retain, cancel=cancellation) as lab:
                server = None if quiet else lab.server  # two Docker calls, for the message -q leaves out
    except Cancelled as stopped:
        left = f"what was made of lab {topo.name} is kept (--retain)" if retain else f"nothing of lab {topo.name} is left"
        with contextlib.suppress(OSError):  # after SIGHUP the terminal is gone
            err.print(f"Interrupted by {stopped.reason}: {left}.", highlight=False)
        raise typer.Exit(stopped.exit_code) from None
    if not quiet:
        err.print(f"\nLab [bold]{topo.name}[/bold] is ready in {time.monotonic() - started:.1f}s. "
                  f"API server: {server}\n"
                  f"  kubectl --context labctl-{topo.name} get nodes -o wide\n"
                  f"  labctl exec {topo.workers[0].name if topo.workers else topo.control_plane.name} -- ip route",
                  highlight=False)


@app.command()
def down(name: str | None = NameOption,
         quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing but errors and warnings")) -> None:
    """Remove a lab: nodes, pods, the network, the state volume and its kubeconfig context."""
    from ..cluster import down as remove_lab

    removed = remove_lab(name, Status(err, quiet=quiet))
    for p in removed.problems:  # what was left behind is never silent, not even under -q
        err.print(f"WARNING: {p}", highlight=False)
    if not quiet:
        err.print(f"Lab {removed.name} removed" + (", with warnings." if removed.problems else "."),
                  highlight=False)


@app.command()
def status() -> None:
    """List labs and their nodes, IPs and states."""
    from rich.table import Table

    from ..cluster import list_labs

    labs = list_labs()
    if not labs:
        out.print("No labs. Create one with `labctl up`.")
        return
    table = Table("LAB", "NODE", "ROLE", "CONTAINER", "STATE", "INTERNAL-IP", "API SERVER", box=None)
    for entry in labs:
        for node in entry.nodes:
            table.add_row(entry.name, node.name, node.role, node.container, node.state, node.internal_ip,
                          entry.server if node.role == "control-plane" else "")
    out.print(table)


@get_app.command("clusters")
def get_clusters() -> None:
    """List labs (like `kind get clusters`)."""
    from ..cluster import list_labs

    for entry in list_labs():
        out.print(entry.name)


@app.command()
def kubeconfig(name: str | None = NameOption) -> None:
    """Print the lab's kubeconfig (context labctl-NAME)."""
    import yaml

    from ..cluster import Lab

    with Lab.open(name) as lab:
        sys.stdout.write(yaml.safe_dump(lab.kubeconfig(), sort_keys=False))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec(node: str = typer.Argument(..., help="node name, e.g. worker or control-plane"),
         command: list[str] = typer.Argument(..., help="the command, after --"),
         name: str | None = NameOption) -> None:
    """Run a command in a node: `labctl exec worker -- ip route`."""
    raise typer.Exit(_attach(name, node, command))


@app.command()
def shell(node: str = typer.Argument(..., help="node name"), name: str | None = NameOption) -> None:
    """Open a shell in a node."""
    raise typer.Exit(_attach(name, node, ["bash"]))


@app.command()
def logs(node: str = typer.Argument(..., help="node name"), name: str | None = NameOption,
         follow: bool = typer.Option(False, "--follow", "-f")) -> None:
    """Show a node's component logs (API server, node agent)."""
    from ..cluster import Lab

    async def copy(chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()

    with Lab.open(name) as lab:
        asyncio.run(copy(lab.node(node).logs(follow)))


def _attach(name: str | None, node: str, command: list[str]) -> int:
    """Like `docker exec -i`, with `-t` when this is an interactive terminal."""
    from ..cluster import Lab

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    with Lab.open(name) as lab:
        return asyncio.run(lab.node(node).attach(command, tty=interactive))


@images_app.command("build")
def images_build(names: list[str] | None = typer.Argument(None, help="images to build (default: all)"),
                 force: bool = typer.Option(False, "--force", help="rebuild even when current")) -> None:
    """Build the lab images locally (base rootfs via a registry or debootstrap)."""
    from .. import images as lab_images
    from ..engine.sdk import connect

    client = connect()
    status = Status(err)
    status.start("Building lab images")
    try:
        lab_images.ensure_images(client, names or None, force=force,
                                 progress=lambda step, done, total: status.update(f"[{done}/{total}] {step[:90]}"))
    except BaseException:
        status.end(False)
        raise
    status.end(True)
    images_list()


@images_app.command("list")
def images_list() -> None:
    """List the lab images: wanted tag, state (ok, stale, missing) and size."""
    from rich.table import Table

    from .. import images as lab_images
    from ..engine.sdk import connect

    table = Table("IMAGE", "TAG", "STATE", "SIZE", box=None)
    for s in lab_images.image_status(connect()):
        size = f"{s.size / 1e6:.1f} MB" if s.size else ""
        table.add_row(s.key, s.ref, s.state, size)
    out.print(table)


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv``; returns the exit status (what tests call).

    Usage errors are click's (usage text, exit 2); a :class:`LabctlError` is one ``ERROR:``
    line and its hint, exit 1; anything else is a bug and keeps its traceback.
    """
    try:
        app(args=argv, prog_name="labctl", standalone_mode=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except LabctlError as error:
        if STATE["verbose"]:
            err.print_exception()
        err.print(f"[red]ERROR:[/red] {error}", highlight=False)
        if error.hint:
            err.print(f"  {error.hint}", highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
