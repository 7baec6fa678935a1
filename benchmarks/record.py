"""What every results file records besides its figures: the command, when, on what, which code."""
from __future__ import annotations

import os
import pathlib
import platform
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def provenance(command: str, started: float) -> dict:
  commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, text=True,
                          capture_output=True, check=False).stdout.strip()
  return {
      'command': command,
      'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'seconds': round(time.time() - started, 1),
      'machine': {'nproc': os.cpu_count(), 'arch': platform.machine(),
                  'python': platform.python_version(), 'loadavg_at_end': os.getloadavg()},
      'code': {'commit': commit},
  }
