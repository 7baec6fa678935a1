"""Widening a transfer network keeps what it computes and lets the new channels train apart."""
from __future__ import annotations

import numpy as np
import pytest

from model_building import transfer_net, widen


def _random_network(width, rng, size=32):
  """A network with random weights and biases everywhere (trained ones are not zero-biased)."""
  model = transfer_net.build(width, batch_size=1, size=size, for_export=False)
  model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in model.get_weights()])
  return model


def test_a_widened_network_computes_what_the_narrow_one_did():
  rng = np.random.default_rng(0)
  narrow = _random_network(0.125, rng)
  wide = transfer_net.build(0.25, batch_size=1, size=32, for_export=False)
  widen.widen(narrow, wide, np.random.default_rng(1))
  content = rng.random((1, 32, 32, 3), np.float32)
  bottleneck = rng.random((1, 1, 1, 100), np.float32)
  expected = np.asarray(narrow([content, bottleneck]))
  assert expected.std() > 0.05  # a picture, not a flat field
  np.testing.assert_allclose(np.asarray(wide([content, bottleneck])), expected, atol=1e-5)
  assert wide.count_params() > 2 * narrow.count_params()


def test_copies_of_a_channel_are_read_with_unequal_shares_that_sum_to_the_old_weight():
  """Equal shares would give the copies equal gradients forever."""
  narrow = _random_network(0.125, np.random.default_rng(0))
  wide = transfer_net.build(0.25, batch_size=1, size=32, for_export=False)
  widen.widen(narrow, wide, np.random.default_rng(1))
  # The first residual block: conv1 makes its inner channels, conv2 reads them.
  (old_maker, _), (old_reader, _) = transfer_net.network(narrow).residual[0]
  (new_maker, _), (new_reader, _) = transfer_net.network(wide).residual[0]
  old_made, new_made = (m.conv.bias.numpy() for m in (old_maker, new_maker))  # all distinct
  old_read, new_read = (r.conv.kernel.numpy() for r in (old_reader, new_reader))
  source = [next(i for i in range(old_made.shape[-1])
                 if new_made[j] == old_made[i])
            for j in range(new_made.shape[-1])]
  assert sorted(set(source)) == list(range(old_made.shape[-1]))
  copied = [i for i in set(source) if source.count(i) > 1]
  assert copied
  new_read = new_read[..., :old_read.shape[-1]]  # its own first outputs are the old ones
  for i in range(old_made.shape[-1]):
    copies = [j for j, s in enumerate(source) if s == i]
    np.testing.assert_allclose(new_read[:, :, copies].sum(axis=2), old_read[:, :, i], atol=1e-6)
    if len(copies) > 1:
      assert not np.allclose(new_read[:, :, copies[0]], new_read[:, :, copies[1]])


def test_a_network_cannot_be_narrowed():
  wide = _random_network(0.25, np.random.default_rng(0))
  narrow = transfer_net.build(0.125, batch_size=1, size=32, for_export=False)
  with pytest.raises(ValueError, match='cannot narrow'):
    widen.widen(wide, narrow, np.random.default_rng(1))
