"""Where a transfer model's time goes, op by op: each op run alone, in a model of its own.

The Python runtime has no per-op profiler, so every op of the model is cut out into a one-op model
(its constant inputs kept, its other inputs made the model's inputs) and timed alone with one
thread, as the job runs the whole (XNNPACK included). The whole model is timed the same way. Ops
run alone miss what the runtime does across ops (fusion, cache reuse), so their sum differs from
the whole; the shares still say where the time goes. Convolutions also get their multiply-adds
(MACs) and the rate they reach. Writes benchmarks/results/op_profile.json, or `--out` (another
machine's profile beside this one's):

    .venv/bin/python -m benchmarks.op_profile [--model magenta-fast] [--rounds 20] [--out PATH]
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import pathlib
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from benchmarks.record import ROOT, provenance, transfer_path

SHARED = ROOT.parent / 'shared'


def _op_name(model, op) -> str:
  return flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)


def _is_constant(model, graph, index: int) -> bool:
  return model.buffers[graph.tensors[index].buffer].data is not None


def one_op_model(model, index: int) -> bytes:
  """The model cut down to its op `index`: the op's variable inputs become the model's inputs."""
  single = copy.copy(model)
  graph = copy.copy(model.subgraphs[0])
  op = graph.operators[index]
  graph.operators = [op]
  graph.inputs = [i for i in op.inputs if i >= 0 and not _is_constant(model, graph, i)]
  graph.outputs = list(op.outputs)
  single.subgraphs = [graph]
  single.signatureDefs = []
  return bytes(flatbuffer_utils.convert_object_to_bytearray(single))


def time_ms(content: bytes, rounds: int) -> float:
  """The fastest of `rounds` invokes (after one warm-up), one thread, inputs at 0.5."""
  interpreter = Interpreter(model_content=content, num_threads=1)
  interpreter.allocate_tensors()
  for detail in interpreter.get_input_details():
    interpreter.set_tensor(detail['index'], np.full(detail['shape'], 0.5, detail['dtype']))
  interpreter.invoke()
  best = float('inf')
  for _ in range(rounds):
    start = time.perf_counter()
    interpreter.invoke()
    best = min(best, time.perf_counter() - start)
  return 1000 * best


def macs(model, graph, op) -> int:
  """Multiply-adds of a convolution (0 for other ops)."""
  name = _op_name(model, op)
  if name not in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
    return 0
  out = graph.tensors[op.outputs[0]].shape  # 1, H, W, C_out
  kernel = graph.tensors[op.inputs[1]].shape  # C_out, kh, kw, C_in (depthwise: 1, kh, kw, C)
  per_output = kernel[1] * kernel[2] * (kernel[3] if name == 'CONV_2D' else 1)
  return int(np.prod(out)) * int(per_output)


def profile(path: str, rounds: int) -> dict:
  with open(path, 'rb') as f:
    data = f.read()
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
  graph = model.subgraphs[0]
  whole = time_ms(data, rounds)
  rows = []
  for index, op in enumerate(graph.operators):
    out = graph.tensors[op.outputs[0]]
    ms = time_ms(one_op_model(model, index), rounds)
    rows.append({'index': index, 'op': _op_name(model, op), 'output': out.name.decode(),
                 'shape': [int(d) for d in out.shape], 'ms': round(ms, 4),
                 'macs': macs(model, graph, op)})
  total = sum(r['ms'] for r in rows)
  by_type = collections.defaultdict(lambda: {'count': 0, 'ms': 0.0, 'macs': 0})
  for r in rows:
    kind = by_type[r['op']]
    kind['count'] += 1
    kind['ms'] += r['ms']
    kind['macs'] += r['macs']
  for kind in by_type.values():
    kind['share'] = round(kind['ms'] / total, 3)
    kind['ms'] = round(kind['ms'], 2)
    if kind['macs']:
      kind['gmac_per_second'] = round(kind['macs'] / kind['ms'] / 1e6, 1)
  conv_macs = sum(r['macs'] for r in rows)
  return {'whole_model_ms': round(whole, 2), 'sum_of_ops_ms': round(total, 2),
          'ops': len(rows), 'gmacs': round(conv_macs / 1e9, 3),
          'by_op_type': dict(sorted(by_type.items(), key=lambda kv: -kv[1]['ms'])),
          'slowest_ops': sorted(rows, key=lambda r: -r['ms'])[:15], 'all_ops': rows}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', default='magenta-fast')
  parser.add_argument('--rounds', type=int, default=20)
  parser.add_argument('--out', type=pathlib.Path,
                      default=ROOT / 'benchmarks' / 'results' / 'op_profile.json')
  args = parser.parse_args(argv)
  magenta = SHARED / 'models' / 'magenta'
  if not magenta.is_dir():
    sys.exit(f'{SHARED} is absent: this benchmark needs the published models')
  started = time.time()
  path = transfer_path(args.model, magenta)
  result = {'what': f'--model {args.model}: each op alone in a one-op model, and the whole model, '
                    f'one thread, fastest of {args.rounds} invokes; gmac_per_second: the '
                    'convolutions\' multiply-adds over their time',
            'model': args.model, **profile(path, args.rounds),
            **provenance('.venv/bin/python -m benchmarks.op_profile ' + ' '.join(
                sys.argv[1:] if argv is None else argv), started)}
  args.out.write_text(json.dumps(result, indent=1) + '\n')
  print(json.dumps({k: result[k] for k in ('whole_model_ms', 'sum_of_ops_ms', 'gmacs',
                                           'by_op_type')}, indent=1))


if __name__ == '__main__':
  main()
