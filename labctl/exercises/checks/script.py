"""The last resort: a shell snippet in a node. Exit 0 passes, 1 fails, anything else is an error.

Prefer a typed kind: a script's failure says only what its output says, and it ties the
exercise to the node's tools. It exists for what no kind reads yet.
"""

from __future__ import annotations

from ..model import CheckSpec
from . import CannotJudge, Context, Verdict, kind


@kind("script")
async def check_script(ctx: Context, spec: CheckSpec) -> Verdict:
    node = ctx.lab.node(spec.params["node"])
    result = await node.exec(["sh", "-c", spec.params["run"]])
    out = (result.stdout + result.stderr).decode(errors="replace").strip()[-500:]
    evidence = {"node": node.name, "exitCode": result.exit_code, "output": out}
    if result.exit_code == 0:
        return Verdict.passed(out.splitlines()[-1] if out else "the script passed", **evidence)
    if result.exit_code == 1:
        return Verdict.failed(out.splitlines()[-1] if out else "the script failed", **evidence)
    raise CannotJudge(f"the check's script ended with exit code {result.exit_code} on {node.name}: {out[-200:]}")
