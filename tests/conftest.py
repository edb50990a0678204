import os
import subprocess
import sys

import pytest


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed `cypher` console script as a user would."""
    exe = os.path.join(os.path.dirname(sys.executable), "cypher")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def wait_until(pred, timeout: float = 5.0) -> bool:
    """Poll `pred` until true or `timeout` seconds pass (real peers answer asynchronously)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return bool(pred())
