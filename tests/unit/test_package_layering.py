"""labctl's packages form layers: shared code sits below the components that use it.

Components (the API server, the controllers, the node agent, DNS, the CLI, the TUI…) are
separate programs or front ends; they share code only through the base packages (the
Kubernetes vocabulary, the cluster settings, the API client, the Docker engine access) and
the libraries, never by importing each other. This test reads every import in ``labctl/``
(including imports inside functions) and fails on a cycle between packages, on a component
importing another component, and on a package importing one of a higher layer.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import labctl

ROOT = Path(labctl.__file__).parent

#: base packages and libraries by layer: a package may import only packages of a lower layer
LAYERS: dict[str, int] = {
    "__init__": 0, "errors": 0, "topologies_data": 0,
    "kube": 1, "clusterconfig": 1, "progress": 1, "filelock": 1,
    "pki": 2, "kubeconfig": 2, "engine": 2,
    "client": 3, "topology": 3, "addons": 3, "imagebuild": 3,
    "images": 4, "cni": 4, "proxy": 4,
    "cluster": 5, "netpol": 5,
    "inspect": 6,
    "exercises": 7,
}
#: programs and front ends: they may import any layer, never each other
COMPONENTS = {"apiserver", "controllers", "agent", "dns", "ingress", "nodeinit", "cli", "tui"}
#: how programs are started: ``python -m labctl`` is the CLI, and ``labctl tui`` starts the TUI
#: (the one import of the TUI; it imports the layers and nothing imports it otherwise)
ENTRY_POINTS = {"__main__": {"cli"}, "cli": {"tui"}}


def _package(module: str) -> str:
    """``labctl.agent.kubelet.runtime`` → ``agent``; ``labctl`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[tuple[str, str]]]:
    """package → {(imported package, "file:line")} for every labctl import in the tree."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package_parts = module.split(".") if rel.name == "__init__" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package_parts[: len(package_parts) - node.level + 1]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                else:
                    targets = [node.module or ""]
                if targets[0] == "labctl":  # `from labctl import kube` imports the subpackage
                    targets = [f"labctl.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target == "labctl" or target.startswith("labctl."):
                    where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
                    edges[_package(module)].add((_package(target), where))
    return edges


def test_every_package_is_placed_in_a_layer_or_is_a_component():
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
                if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    unplaced = packages - set(LAYERS) - COMPONENTS - set(ENTRY_POINTS)
    assert not unplaced, f"place these packages in LAYERS or COMPONENTS (and in docs/architecture.md): {unplaced}"


def test_no_cycles_between_packages():
    graph = {pkg: {dep for dep, _ in deps if dep != pkg} for pkg, deps in _imports().items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle between labctl packages: {' -> '.join(err.args[1])}") from None


def test_components_never_import_each_other_and_layers_only_import_downwards():
    problems = []
    for pkg, deps in sorted(_imports().items()):
        for dep, where in sorted(deps):
            if dep == pkg or dep in ENTRY_POINTS.get(pkg, ()):
                continue
            if dep in COMPONENTS:
                problems.append(f"{where}: {pkg} imports the component {dep}")
            elif pkg not in COMPONENTS and LAYERS.get(dep, 99) >= LAYERS.get(pkg, -1):
                problems.append(f"{where}: {pkg} (layer {LAYERS.get(pkg)}) imports {dep} (layer {LAYERS.get(dep)})")
    assert not problems, "imports against labctl's layering:\n" + "\n".join(problems)


def test_the_checker_sees_relative_and_function_level_imports():
    edges = _imports()
    # nodeinit imports the cluster settings with a relative import; client reads the kinds table
    assert "clusterconfig" in {dep for dep, _ in edges["nodeinit"]}
    assert "kube" in {dep for dep, _ in edges["client"]}
