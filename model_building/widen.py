"""Widens a trained transfer network without changing what it computes (Net2WiderNet).

Why: the house student stopped improving at width 0.25 on this CPU, and starting a wider one from
scratch would throw away the steps it had trained. Each new channel repeats an existing one (the
same weights in the layer that makes it, and in its style norm, so the same values after the
norm's statistics and the ReLU), and each layer that reads the repeated channel shares the old
weight between the copies, so the sums are unchanged. The shares are unequal (random, summing to
1): equal shares would give the copies equal gradients, and they would never become different.
"""
from __future__ import annotations

import numpy as np

from model_building import transfer_net


def _channel_groups(net: transfer_net.TransferNet) -> list[tuple[list, list]]:
  """(layers that make a group of channels, convolutions that read it): every group of channels
  that widens together. The trunk is one group: the residual blocks add into it."""
  contract, residual, expand = net.contract, net.residual, net.expand
  groups = [([contract[0]], [contract[1]]),
            ([contract[1]], [contract[2]]),
            ([contract[2]] + [layer for block in residual for layer in block[1]],
             [block[0][0] for block in residual] + [expand[0][0]])]
  groups += [(list(block[0]), [block[1][0]]) for block in residual]
  groups += [(list(expand[0]), [expand[1][0]]), (list(expand[1]), [expand[2][0]])]
  return groups


def _layers(net: transfer_net.TransferNet) -> list:
  """Every convolution and style norm, in a fixed order."""
  return (list(net.contract) + [layer for block in net.residual for pair in block for layer in pair]
          + [layer for pair in net.expand for layer in pair])


def _kernels(layer) -> list:
  """The Conv2D layers inside a ReflectConv (its convolution) or a StyleNorm (gamma and beta)."""
  return [layer.conv] if isinstance(layer, transfer_net.ReflectConv) else [layer.gamma, layer.beta]


def widen(narrow, wide, rng: np.random.Generator) -> None:
  """Sets the weights of `wide` (built by `transfer_net.build` with a larger width) so that it
  computes what `narrow` does, from `narrow`'s weights."""
  old_groups = _channel_groups(transfer_net.network(narrow))
  new_groups = _channel_groups(transfer_net.network(wide))
  values = {id(new): old.get_weights()
            for old_layer, new_layer in zip(_layers(transfer_net.network(narrow)),
                                            _layers(transfer_net.network(wide)))
            for old, new in zip(_kernels(old_layer), _kernels(new_layer))}
  for (old_makers, _), (new_makers, new_readers) in zip(old_groups, new_groups):
    before = _kernels(old_makers[0])[0].filters
    after = _kernels(new_makers[0])[0].filters
    if after < before:
      raise ValueError(f'cannot narrow a network ({before} -> {after} channels)')
    source = np.concatenate([np.arange(before), rng.integers(0, before, after - before)])
    share = rng.uniform(0.5, 1.5, after)
    share /= np.bincount(source, share, before)[source]  # the copies of a channel share 1
    for layer in new_makers:
      for conv in _kernels(layer):
        kernel, bias = values[id(conv)]
        values[id(conv)] = [kernel[..., source], bias[source]]
    for conv in new_readers:
      kernel, bias = values[id(conv.conv)]
      values[id(conv.conv)] = [kernel[:, :, source, :] * share[:, None], bias]
  for layer in _layers(transfer_net.network(wide)):
    for conv in _kernels(layer):
      conv.set_weights(values[id(conv)])
