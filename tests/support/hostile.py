"""Bodies a hostile client sends (issue 10), shared by the decoder's unit tests and the server tests."""

from __future__ import annotations


def alias_bomb(levels: int = 9, fan_out: int = 9) -> bytes:
    """A "billion laughs" YAML document: each level aliases the previous one ``fan_out`` times.

    Nine levels of nine make about 500 bytes that expand to 9**9 strings.
    """
    lines = ["a: &a [" + ",".join(['"lol"'] * fan_out) + "]"]
    for level in range(1, levels):
        prev, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * fan_out) + "]")
    return ("\n".join(lines) + "\n").encode()


def nested_json(depth: int) -> bytes:
    return b'{"metadata": {"name": "deep"}, "spec": ' + b"[" * depth + b"]" * depth + b"}"


def nested_yaml_block(depth: int) -> bytes:
    """Nested block mappings, two spaces per level: what a YAML file nested ``depth`` deep looks like."""
    return b"metadata: {name: deep}\nspec:\n" + b"".join(b"  " * i + b"a:\n" for i in range(1, depth))


def nested_yaml_flow(depth: int) -> bytes:
    return b"metadata: {name: deep}\nspec: " + b"[" * depth + b"]" * depth + b"\n"
