"""What every results file records besides its figures: the command, when, on what, which code."""
from __future__ import annotations

import os
import pathlib
import platform
import re
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def provenance(command: str, started: float) -> dict:
  """Where a result came from. `uncommitted`: tracked files that differed from the commit when
  the result was written (the measured code may then not be the commit's)."""
  git = lambda *args: subprocess.run(['git', *args], cwd=ROOT, text=True, capture_output=True,
                                     check=False).stdout
  commit = git('rev-parse', 'HEAD').strip()
  uncommitted = [line[3:] for line in git('status', '--porcelain', '--untracked-files=no'
                                          ).splitlines()]
  return {
      'command': command,
      'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
      'seconds': round(time.time() - started, 1),
      'machine': {'nproc': os.cpu_count(), 'arch': platform.machine(), **cpu(),
                  'python': platform.python_version(), 'loadavg_at_end': os.getloadavg()},
      'code': {'commit': commit, 'uncommitted': uncommitted},
  }


# The instruction sets int8 and float inference speed depends on (VNNI: int8 dot products).
CPU_FEATURES = ('sse4_2', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16',
                'amx_int8')


def cpu() -> dict:
  """The CPU's model name and which of CPU_FEATURES it has (Linux; empty elsewhere)."""
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    return {}
  model = re.search(r'^model name\s*:\s*(.+)$', text, re.M)
  flags = set(re.search(r'^flags\s*:\s*(.+)$', text, re.M).group(1).split())
  return {'cpu': model.group(1).strip() if model else platform.processor(),
          'cpu_features': [name for name in CPU_FEATURES if name in flags]}


def transfer_path(model: str, model_dir: pathlib.Path) -> str:
  """The local file of a `--model`'s transfer network, built or fetched as the job does."""
  from models import exports, fetch, registry
  transfer = registry.resolve_model_set(model, str(model_dir)).transfer
  return (exports.local_build(transfer) if transfer.built_from else fetch.local_copy(transfer))[0]
