"""stop_daemons: the coordinator goes last, a daemon ignoring SIGTERM is killed."""

from __future__ import annotations

import subprocess
import sys
import time

from netflix_assets.stack.process import stop_daemons


def test_stop_daemons_stops_every_one_and_kills_a_stubborn_one() -> None:
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    )
    daemons = {
        "master": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
        "stubborn": subprocess.Popen([sys.executable, "-c", ignore_term]),
        "done": subprocess.Popen([sys.executable, "-c", "pass"]),
    }
    procs = dict(daemons)
    procs["done"].wait()
    time.sleep(1.0)  # the stubborn one has installed its SIGTERM handler by now
    stop_daemons(daemons, "master", timeout_s=1.0)
    assert daemons == {}
    assert procs["master"].returncode == -15
    assert procs["stubborn"].returncode == -9
