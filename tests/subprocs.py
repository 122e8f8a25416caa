"""Running a command from a test: its own session, killed whole on a timeout (no worker outlives
the test), the test failing with the end of its output."""
from __future__ import annotations

import os
import signal
import subprocess
from typing import Any, Sequence, Tuple


def run_bounded(cmd: Sequence[str], timeout: float, what: str, **popen: Any) -> Tuple[int, str, str]:
    """``(returncode, stdout, stderr)`` of ``cmd``; an AssertionError naming ``what`` after ``timeout`` s."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"{what} did not finish in {timeout:.0f} s:\n{stdout[-2000:]}{stderr[-2000:]}") from None
    return proc.returncode, stdout, stderr
