"""pyroute2's package ``__init__`` is deferred in the node agent, and nothing that asks for it breaks.

Each check runs in a fresh interpreter: whether pyroute2's ``__init__`` ran is a property of
a process's first imports.
"""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


DEFER = "from labctl.cni.pyroute2_lazy import defer_package_init\ndefer_package_init()\n"


def test_the_agents_netlink_work_loads_neither_the_whole_library_nor_iproute() -> None:
    out = _run(DEFER + "import sys, labctl.cni.daemon, labctl.agent.kubelet, labctl.agent.serviceproxy\n"
               "print(*(m in sys.modules for m in ('pyroute2.ndb.main', 'pyroute2.ipdb', 'pyroute2.iproute')))")
    assert out == "False False False"


def test_a_top_level_name_still_works_and_runs_the_real_init() -> None:
    out = _run(DEFER + "import labctl.cni.rtnl\n"
               "from pyroute2 import IPRoute, NDB\n"
               "from pyroute2.iproute import IPRoute as Direct\n"
               "import pyroute2\n"
               "print(IPRoute is Direct, NDB.__name__, pyroute2.__version__ != 'unknown')")
    assert out == "True NDB True"


def test_an_unknown_name_is_an_attribute_error() -> None:
    out = _run(DEFER + "import labctl.cni.rtnl, pyroute2\n"
               "try:\n    pyroute2.no_such_name\nexcept AttributeError as err:\n    print(err)")
    assert out == "module 'pyroute2' has no attribute 'no_such_name'"
