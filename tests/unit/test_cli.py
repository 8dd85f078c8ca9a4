"""The command line's contract: exit codes, one-line errors with a hint, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

from labctl import __version__
from labctl.cli.main import run


def test_version_and_help(capsys):
    assert run(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert run([]) == 0  # no command: the help, like kubectl
    assert "Commands" in capsys.readouterr().out
    assert run(["--help"]) == 0
    assert "down" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    assert run(["frobnicate"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_user_errors_are_one_line_with_a_hint(capsys, tmp_path):
    broken = tmp_path / "lab.yaml"
    broken.write_text("nodes:\n  - role: master\n")
    assert run(["up", "-t", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "ERROR:" in err and "nodes[0].role" in err and "Traceback" not in err
    assert run(["up", "-t", str(tmp_path / "missing.yaml")]) == 1
    assert "failed to read the topology file" in capsys.readouterr().err


def test_up_loads_neither_the_tui_nor_pydantic(tmp_path):
    """`labctl up`'s start is part of its time: its command line and its steps' modules leave out
    Textual (the TUI's), pydantic (typer's coercion of values that need none) and rich's Markdown."""
    code = ("import sys; from labctl.cli.main import run; run(sys.argv[1:]); "
            "import labctl.cluster.create, labctl.cluster.bootstrap; print(*sys.modules)")
    argv = ["up", "-q", "--name", "speed", "-t", str(tmp_path / "missing.yaml")]  # refused after parsing
    loaded = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                            check=True).stdout.split()
    assert {m.split(".")[0] for m in loaded}.isdisjoint({"textual", "pydantic", "markdown_it", "pygments"})
