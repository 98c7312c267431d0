"""Inverted dropout that is cheap on the CPU.

``torch.nn.Dropout`` on the CPU draws its mask with ``bernoulli_``: one Mersenne-Twister
number per element. On a 2-core CPU that made dropout about as costly as the matmuls around
it (``aten::bernoulli_`` was 11 % of a full-size generator step, docs/RESULTS.md, "Speed").
Here one 64-bit random word gives the keep/drop decision of three elements (16 random bits
each), so the mask costs about a third of the draws and none of bernoulli's per-element
work. The distribution is dropout's: every element is kept independently with probability
``1 - p`` (``p`` rounded to a multiple of 1/65536, i.e. off by at most 7.7e-6) and kept
elements are scaled by ``1 / (1 - p)``. Draws come from torch's default generator, so
``torch.manual_seed`` (RecBole's ``init_seed``) makes runs repeat exactly.

Off the CPU (CUDA's dropout is a fused Philox kernel) and in eval mode this is
``torch.nn.functional.dropout``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout", "dropout", "keep_mask"]

_LANES_PER_WORD = 3  # a non-negative int64 from random_() has 63 random bits: 3 full int16 lanes


def keep_mask(shape, p: float, device=None) -> torch.Tensor:
    """Bool tensor of ``shape``: True with probability ``1 - p`` (quantised to 1/65536),
    independently per element."""
    n = math.prod(shape)
    words = torch.empty((n + _LANES_PER_WORD - 1) // _LANES_PER_WORD, dtype=torch.int64,
                        device=device).random_()
    # lanes 0-2 of each little-endian word are uniform over all 65536 int16 values; lane 3
    # holds the word's top bits, whose sign bit random_() leaves at 0, so it is not used
    lanes = words.view(torch.int16).view(-1, 4)[:, :_LANES_PER_WORD]
    threshold = -32768 + round(p * 65536)  # drop the lowest round(p * 65536) of 65536 values
    return (lanes >= threshold).view(-1)[:n].view(shape)


class _MaskedScale(torch.autograd.Function):
    """``x * keep * scale`` that saves the 1-byte mask for backward (as native dropout does)."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * (keep.to(x.dtype) * scale)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return grad * (keep.to(grad.dtype) * ctx.scale), None, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Functional form of :class:`Dropout`."""
    if not training or p == 0.0:
        return x
    if (not Dropout.cheap_cpu_mask or x.device.type != "cpu" or p >= 1.0
            or not x.dtype.is_floating_point):
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """Drop-in for :class:`torch.nn.Dropout` (same ``p``, no state) with the CPU mask above."""

    # False: torch's own dropout everywhere (benchmarks/bench_dropout.py compares the two)
    cheap_cpu_mask = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
