"""Built-in styles: bottlenecks of public-domain paintings, predicted once and committed.

An app with a fixed set of styles needs no prediction network at run time (the TensorFlow post's
own advice): `--styles builtin:NAME` or `builtin:all` takes the style from `data/style_bank.json`
instead of predicting it. The bank was made from the paintings in ../shared/images/style with the
published int8 prediction network (shorter side to 256, centre crop); rebuild it with

    python -m models.style_bank ../shared
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys

import numpy as np

from models import imaging, registry
from models.contract import StylePredictor

PREFIX = 'builtin:'
BANK_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'style_bank.json')
# name -> (file in ../shared/images/style, a line describing the painting)
PAINTINGS = {
    'starry_night': ('van_gogh_starry_night.jpg', 'Vincent van Gogh, The Starry Night, 1889'),
    'night_cafe': ('van_gogh_night_cafe.jpg', 'Vincent van Gogh, The Night Café, 1888'),
    'van_gogh_self_portrait': ('van_gogh_self_portrait.jpg',
                               'Vincent van Gogh, Self-Portrait, 1889'),
    'the_scream': ('munch_the_scream.jpg', 'Edvard Munch, The Scream, 1893'),
    'great_wave': ('hokusai_great_wave_crop.jpg',
                   'Katsushika Hokusai, The Great Wave off Kanagawa, c. 1831 (detail)'),
    'tahitian_women': ('gauguin_tahitian_women.jpg',
                       'Paul Gauguin, Tahitian Women on the Beach, 1891'),
    'edtaonisl': ('picabia_edtaonisl.jpg', 'Francis Picabia, Edtaonisl (Ecclesiastic), 1913'),
    'woman_with_a_hat': ('matisse_woman_with_a_hat.jpg', 'Henri Matisse, Woman with a Hat, 1905'),
    'camille_mauclair': ('vallotton_camille_mauclair.jpg',
                         'Félix Vallotton, portrait of Camille Mauclair, woodcut, c. 1896'),
    'clouds_over_bor': ('klee_clouds_over_bor_1940.jpg', 'Paul Klee, Clouds over Bor, 1940'),
    'grand_canyon_poster': ('wpa_poster_grand_canyon.png',
                            'WPA National Park poster, Grand Canyon, c. 1938'),
    'zion_poster': ('wpa_poster_zion.png', 'WPA National Park poster, Zion, c. 1938'),
}


@dataclasses.dataclass(frozen=True)
class BankStyle:
  name: str
  description: str
  bottleneck: np.ndarray


@functools.lru_cache(maxsize=1)
def load() -> dict[str, BankStyle]:
  with open(BANK_PATH, encoding='utf-8') as f:
    data = json.load(f)
  return {name: BankStyle(name, entry['description'],
                          np.asarray(entry['bottleneck'], dtype=np.float32))
          for name, entry in data['styles'].items()}


def is_builtin(uri: str) -> bool:
  return uri.startswith(PREFIX)


def version(spec: str) -> str:
  """Changes when this style's bottleneck does (part of its pairs' fingerprints); renaming or
  adding other styles in the bank leaves it alone."""
  (name,) = names(spec)
  return 'bank-' + hashlib.sha256(load()[name].bottleneck.tobytes()).hexdigest()[:16]


def names(spec: str) -> list[str]:
  """`builtin:NAME` or `builtin:all` -> bank names; a KeyError names the unknown one."""
  wanted = spec[len(PREFIX):]
  bank = load()
  if wanted == 'all':
    return sorted(bank)
  if wanted not in bank:
    raise KeyError(f'{spec!r} is not a built-in style; there are: {", ".join(sorted(bank))}')
  return [wanted]


def build(shared: str, out: str = BANK_PATH) -> None:
  model = registry.REGISTRY['magenta-int8'].prediction
  predictor = StylePredictor(os.path.join(shared, 'models', 'magenta', model.name))
  styles = {}
  for name, (file_name, description) in PAINTINGS.items():
    with open(os.path.join(shared, 'images', 'style', file_name), 'rb') as f:
      picture = imaging.decode(f.read()).image
    bottleneck = predictor.predict(imaging.style_input(picture))
    styles[name] = {'description': description, 'source': file_name,
                    'bottleneck': [round(float(v), 5) for v in bottleneck]}
  lines = [f'  {json.dumps(name)}: {json.dumps(entry, ensure_ascii=False)}'
           for name, entry in styles.items()]  # one line per style: reviewable diffs
  with open(out, 'w', encoding='utf-8') as f:
    f.write('{\n "made_with": %s,\n "styles": {\n%s\n }\n}\n' % (
        json.dumps(f'{model.name} (sha256 {model.sha256})'), ',\n'.join(lines)))


if __name__ == '__main__':
  if len(sys.argv) != 2:
    sys.exit(__doc__)
  build(sys.argv[1])
