"""The command line's contract: exit codes, one-line errors with a hint, no tracebacks."""

from __future__ import annotations

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
