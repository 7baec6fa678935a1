"""Re-exports a published Magenta transfer model (which you supply) faster and closer to float.

    python -m model_building.optimize --out optimized/ \\
        --source magenta_arbitrary-image-stylization-v1-256_fp16_transfer_1.tflite \\
        [--calibration 'gs://my-catalog/sample/*.jpg'] [--styles 'paintings/*.jpg']

The source's weights are loaded into the Keras rebuild (`model_building.transfer_net`), checked
to compute the same thing (PSNR over 100 dB in float), and exported in the forms LiteRT runs
fastest:

    OUT/fast/stylize_fast_transfer.tflite              int8 weights, float activations
    OUT/calibrated/stylize_calibrated_transfer.tflite  full int8, calibrated on your own pictures
    OUT/fp16/stylize_fp16_transfer.tflite              float16 weights, for GPU delegates
    OUT/report.json, OUT/report.md                     size, latency and fidelity of each

Each folder is a model set for the job: `--model OUT/fast` (the prediction network is the default
set's unless the folder holds a `*prediction*.tflite`). All keep float32 inputs and outputs and the
published tensor names and shapes.

Calibration and evaluation use different pictures: every fourth `--calibration` picture (or
`--eval` when given) is kept out of calibration and used for the fidelity figures. Bottlenecks are
the built-in style bank's, plus the predictions for `--styles` when given; every third is kept for
evaluation only.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time

import numpy as np
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from model_building import export, import_published, quality
from models import contract, fetch, imaging, registry, style_bank

LOG = logging.getLogger('optimize')
VARIANTS = (  # (folder, export kind, what it is)
    ('fast', 'int8-weights', 'int8 weights, float activations; no calibration needed'),
    ('calibrated', 'int8', 'full int8, calibrated on your pictures'),
    ('fp16', 'fp16', 'float16 weights, for GPU delegates'),
)


def _read_pictures(patterns: list[str], limit: int) -> list[tuple[str, object]]:
  """(uri, decoded RGB picture) for up to `limit` files matching the patterns, in sorted order."""
  uris = []
  for pattern in patterns:
    uris += [m.path for m in FileSystems.match([pattern])[0].metadata_list]
  pictures = []
  for uri in sorted(set(uris))[:limit]:
    try:
      with FileSystems.open(uri) as f:
        pictures.append((uri, imaging.decode(f.read(), min_side=contract.CONTENT_SIZE).image))
    except (imaging.ImageError, OSError) as e:
      LOG.warning('skipping %s: %s', uri, e)
  return pictures


def _bottlenecks(styles: list[str], predictor_path: str | None) -> list[np.ndarray]:
  bank = [s.bottleneck for s in style_bank.load().values()]
  if not styles:
    return bank
  if not predictor_path:
    raise SystemExit('--styles needs --predictor (the published int8 prediction .tflite)')
  predictor = contract.StylePredictor(predictor_path)
  return bank + [predictor.predict(imaging.style_input(p)) for _, p in _read_pictures(styles, 64)]


def _synthetic_contents(count: int, seed: int = 0) -> list[np.ndarray]:
  """Smooth random pictures: a stand-in when no real picture is given (said in the report)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    small = rng.random((12, 12, 3)).astype(np.float32)
    picture = Image.fromarray((small * 255).astype(np.uint8)).resize(
        (contract.CONTENT_SIZE,) * 2, Image.Resampling.BICUBIC)
    out.append(imaging.to_unit_float(picture))
  return out


def latency_ms(paths: dict[str, str], content: np.ndarray, bottleneck: np.ndarray,
               rounds: int = 15) -> dict[str, float]:
  """Median per-image latency of each model, one thread, measured in interleaved rounds so all
  see the same machine load."""
  nets = {name: contract.StyleTransfer(path, num_threads=1) for name, path in paths.items()}
  times = {name: [] for name in nets}
  for net in nets.values():
    net.stylize(content, bottleneck)  # warm up
  for _ in range(rounds):
    for name, net in nets.items():
      start = time.perf_counter()
      net.stylize(content, bottleneck)
      times[name].append((time.perf_counter() - start) * 1000)
  return {name: round(statistics.median(t), 1) for name, t in times.items()}


def fidelity(paths: dict[str, str], reference: str, contents: list[np.ndarray],
             bottlenecks: list[np.ndarray]) -> dict[str, dict[str, float]]:
  """Mean SSIM and PSNR of each model's output against the reference model's, over all pairs."""
  source = contract.StyleTransfer(reference)
  nets = {name: contract.StyleTransfer(path) for name, path in paths.items()}
  scores = {name: ([], []) for name in nets}
  for content in contents:
    for bottleneck in bottlenecks:
      expected = source.stylize(content, bottleneck)
      for name, net in nets.items():
        got = net.stylize(content, bottleneck)
        scores[name][0].append(quality.ssim(got, expected))
        scores[name][1].append(quality.psnr(got, expected))
  return {name: {'ssim': round(float(np.mean(s)), 4), 'psnr_db': round(float(np.mean(p)), 3),
                 'min_ssim': round(float(np.min(s)), 4)}
          for name, (s, p) in scores.items()}


def optimize(source: str, out_dir: str, calibration: list[str] = (), eval_patterns: list[str] = (),
             styles: list[str] = (), predictor: str | None = None, compare: list[str] = (),
             max_calibration: int = 64, rounds: int = 15) -> dict:
  """Writes the three models and the report; returns the report."""
  model = import_published.load_published(source)
  bottlenecks = _bottlenecks(list(styles), predictor)
  pictures = _read_pictures(list(calibration), max_calibration) if calibration else []
  if eval_patterns:
    held, calibrate = _read_pictures(list(eval_patterns), 16), pictures
  else:  # every fourth picture is kept out of calibration, for the fidelity figures
    held = pictures[3::4]
    calibrate = [p for i, p in enumerate(pictures) if i % 4 != 3]
  frames = lambda pics: [imaging.content_input(p, frame)[0] for _, p in pics
                         for frame in ('fit', 'square')]
  eval_contents = frames(held) or _synthetic_contents(4)
  calib_contents = frames(calibrate)
  # Styles split too: every third bottleneck is for evaluation only.
  eval_bottlenecks = bottlenecks[::3]
  calib_bottlenecks = [b for i, b in enumerate(bottlenecks) if i % 3] or bottlenecks

  equivalence = import_published.check_equivalence(
      model, source, eval_contents[:2], eval_bottlenecks[:2])
  LOG.info('rebuild matches %s: PSNR %.1f dB', source, equivalence)

  written = {}
  for folder, kind, _ in VARIANTS:
    if kind == 'int8' and not calib_contents:
      LOG.warning('no --calibration pictures: skipping the calibrated full-int8 model')
      continue
    rng = np.random.default_rng(0)
    representative = lambda rng=rng: (
        (c, calib_bottlenecks[int(rng.integers(len(calib_bottlenecks)))])
        for c in calib_contents for _ in range(2))
    data = export.to_tflite(model, kind, representative if kind == 'int8' else None)
    path = FileSystems.join(out_dir, folder, f'stylize_{folder}_transfer.tflite')
    _write(path, data)
    written[folder] = path
  local = {name: _local(path) for name, path in written.items()}
  compared = {os.path.basename(p): p for p in compare}
  report = {
      'source': source,
      'rebuild_psnr_db': round(equivalence, 1),
      'evaluation': {
          'pictures': [uri for uri, _ in held] or
                      'synthetic (no held-out pictures: no --eval, and fewer than 4 --calibration)',
          'frames': ['fit', 'square'], 'bottlenecks': len(eval_bottlenecks),
          'calibration_pictures': [uri for uri, _ in calibrate] if 'calibrated' in written else []},
      'machine': f'{platform.machine()}, {os.cpu_count()} CPUs, 1 thread per model',
      'models': {},
  }
  speed = latency_ms({**local, 'source': source, **compared}, eval_contents[0],
                     eval_bottlenecks[0], rounds)
  quality_by_name = fidelity({**local, **compared}, source, eval_contents, eval_bottlenecks)
  for folder, kind, description in VARIANTS:
    if folder in written:
      report['models'][folder] = {
          'path': written[folder], 'kind': kind, 'what': description,
          'bytes': os.path.getsize(local[folder]), 'latency_ms': speed[folder],
          **quality_by_name[folder]}
  report['models']['source'] = {'path': source, 'bytes': os.path.getsize(source),
                                'latency_ms': speed['source']}
  for name, path in compared.items():
    report['models'][name] = {'path': path, 'bytes': os.path.getsize(path),
                              'latency_ms': speed[name], **quality_by_name[name]}
  _write(FileSystems.join(out_dir, 'report.json'), json.dumps(report, indent=1).encode())
  _write(FileSystems.join(out_dir, 'report.md'), markdown(report).encode())
  return report


def markdown(report: dict) -> str:
  lines = [f'Source: `{report["source"]}` (Keras rebuild matches it at '
           f'{report["rebuild_psnr_db"]} dB PSNR). {report["machine"]}.', '',
           '| model | bytes | latency ms | SSIM vs source | PSNR dB |', '|---|---|---|---|---|']
  for name, row in report['models'].items():
    lines.append(f'| {name} | {row["bytes"]} | {row["latency_ms"]} | {row.get("ssim", "")} | '
                 f'{row.get("psnr_db", "")} |')
  return '\n'.join(lines) + '\n'


def _write(uri: str, data: bytes) -> None:
  with FileSystems.create(uri) as f:
    f.write(data)


def _local(uri: str) -> str:
  """A local path for `uri` (the interpreter reads only local files)."""
  if '://' not in uri:
    return uri
  return fetch.local_copy(registry.ModelFile(uri), fresh=True)[0]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split('\n\n', 1)[1])
  parser.add_argument('--source', required=True,
                      help='the published Magenta fp16 transfer .tflite (weights only are '
                           'quantized in it; an int8 file quantizes activations and is refused)')
  parser.add_argument('--out', required=True, help='output folder (local or gs://)')
  parser.add_argument('--calibration', action='append', default=[],
                      help='glob of your own catalog pictures (repeatable; local or gs://)')
  parser.add_argument('--eval', action='append', default=[],
                      help='glob of pictures for the fidelity figures (default: every 4th '
                           'calibration picture, kept out of calibration)')
  parser.add_argument('--styles', action='append', default=[],
                      help='glob of style pictures to add to the built-in bank\'s bottlenecks')
  parser.add_argument('--predictor', help='prediction .tflite, needed with --styles')
  parser.add_argument('--compare', action='append', default=[],
                      help='another transfer .tflite to time and score alongside (e.g. the '
                           'published int8)')
  parser.add_argument('--rounds', type=int, default=15, help='timed runs per model')
  args = parser.parse_args(argv)
  if args.styles and not args.predictor:
    parser.error('--styles needs --predictor (the published int8 prediction .tflite)')
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  report = optimize(args.source, args.out, args.calibration, args.eval, args.styles,
                    args.predictor, args.compare, rounds=args.rounds)
  print(markdown(report))


if __name__ == '__main__':
  main()
