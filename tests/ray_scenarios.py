"""Ray scenarios the tests run inside a private network namespace (``tests/test_ray.py``).

``python tests/ray_scenarios.py ACTION CAMERA AFTER_FRAMES -- MTMC_ARGS...`` starts a local Ray
(``ray.init(num_cpus=2)``), runs ``mtmc MTMC_ARGS`` in this process (main thread, as the console
script does) and, from a second thread, once camera CAMERA's actor has processed AFTER_FRAMES frames:
``kill`` kills that actor (``ray.kill``), ``term`` sends this process SIGTERM. Prints one JSON line
``{"rc": exit code, "acted": true/false}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.cli import main  # noqa: E402
from pipeline.ray_connect import import_ray  # noqa: E402
from pipeline.ray_live import ACTOR_PREFIX as LIVE_PREFIX  # noqa: E402
from pipeline.ray_run import ACTOR_PREFIX  # noqa: E402


def _find_actor(ray, camera: str, timeout_s: float = 120.0):  # noqa: ANN001, ANN202 - ray handles
    """The camera actor of the run (or stream actor of the live session) in this process, once it exists."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for a in ray.util.list_named_actors(all_namespaces=True):
            if a["name"].startswith((ACTOR_PREFIX, LIVE_PREFIX)) and a["name"].endswith(f"-{camera}"):
                return ray.get_actor(a["name"], namespace=a["namespace"])
        time.sleep(0.1)
    return None


def _act(action: str, camera: str, after: int, acted: list[bool]) -> None:
    ray = import_ray()
    actor = _find_actor(ray, camera)
    if actor is None:
        return
    while ray.get(actor.processed.remote()) < after:  # answered between the actor's chunks
        time.sleep(0.05)
    if action == "kill":
        ray.kill(actor, no_restart=True)
    else:
        os.kill(os.getpid(), signal.SIGTERM)
    acted.append(True)


def scenario(action: str, camera: str, after: int, argv: list[str]) -> dict[str, object]:
    """Run ``mtmc argv`` on a local Ray and ``action`` on ``camera`` after ``after`` frames."""
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    acted: list[bool] = []
    threading.Thread(target=_act, args=(action, camera, after, acted), daemon=True).start()
    rc = main(argv)
    return {"rc": rc, "acted": bool(acted)}


if __name__ == "__main__":
    sep = sys.argv.index("--")
    action, cam, after = sys.argv[1:sep]
    print(json.dumps(scenario(action, cam, int(after), sys.argv[sep + 1:])), flush=True)
