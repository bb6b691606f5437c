"""Running Ray in a private network namespace for the tests (``unshare -n``, loopback only).

Ray binds the machine's network address whatever it is told, so every Ray process of the tests runs in a
namespace of its own with only loopback up (see ../shared/DESIGN.md): Ray traffic never leaves the machine.
:data:`requires_ray` skips with the reason when Ray is not installed or a namespace cannot be made (not root).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BIN = Path(sys.executable).parent


def _netns_problem() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return 'Ray is not installed (pip install -e ".[ray]")'
    try:
        probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run unshare -n ({exc}); Ray tests need a private network namespace"
    if probe.returncode != 0:
        return ("cannot make a private network namespace (unshare -n needs root): Ray would bind the machine's "
                f"address ({probe.stderr.decode(errors='replace').strip()})")
    return None


PROBLEM = _netns_problem()
requires_ray = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")


def in_netns(script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run bash ``script`` in a new network namespace with only loopback (the venv's bin/ first on PATH)."""
    # loopback only, in a namespace of its own: no Ray token auth (a token in ~/.ray from another local
    # Ray would otherwise be required by `ray start` and missing in the driver)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "YOLO_OFFLINE": "1",
           "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(["unshare", "-n", "bash", "-c", f"ip link set lo up && cd {shlex.quote(str(REPO))} && "
                           + script], capture_output=True, text=True, timeout=timeout, env=env)


def scenario(action: str, camera: str, after: int, argv: list[str | Path]) -> tuple[dict, str]:
    """Run ``tests/ray_scenarios.py ACTION CAMERA AFTER -- argv`` in a namespace; its JSON line and stderr."""
    cmd = shlex.join([sys.executable, str(REPO / "tests" / "ray_scenarios.py"), action, camera, str(after), "--",
                      *map(str, argv)])
    proc = in_netns(cmd)
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr
