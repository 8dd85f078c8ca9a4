"""pyroute2 without its package ``__init__`` until a top-level name is asked for.

Why: pyroute2 0.9's ``pyroute2/__init__.py`` imports every part of the library (IPDB, NDB,
WireGuard, nl80211, conntrack, plan9, …) to offer them as ``pyroute2.X``: 163 modules,
about 14 MiB and 0.12 s of CPU in every node agent, at the moment a lab's agents all start
on two cores. The node agent needs a few of them: the netlink message classes that
:mod:`labctl.cni.rtnl` sends for the CNI daemon, the host-gw routes and the load balancer
addresses. The agent calls :func:`defer_package_init` first thing (the CNI plugin executables
import no pyroute2 at all, so :mod:`labctl.cni`'s own import does not pay even this).

:func:`defer_package_init` puts the package in ``sys.modules`` with its ``__path__`` but
without running ``__init__``, so ``import pyroute2.netlink.rtnl`` loads only what that
module imports (pyroute2's own modules import each other by submodule, ``from pyroute2
import config``). A top-level name that is no submodule (``from pyroute2 import IPRoute``)
runs the real ``__init__`` first, so such code still works, at the old cost.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def defer_package_init() -> None:
    """Register pyroute2's package without running its ``__init__`` (a no-op once pyroute2 is imported)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:  # not installed: the import that needs it says so
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):  # probes such as __file__ / __all__ / __wrapped__ must not load it all
            raise AttributeError(name)
        try:
            return importlib.import_module(f"pyroute2.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"pyroute2.{name}":
                raise
        del package.__dict__["__getattr__"]
        loader.exec_module(package)  # the real __init__: every top-level name
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__dict__["__getattr__"] = __getattr__
    sys.modules["pyroute2"] = package

