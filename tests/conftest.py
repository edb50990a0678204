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
