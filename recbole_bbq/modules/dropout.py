"""Inverted dropout that is cheap on the CPU.

``torch.nn.Dropout`` on the CPU draws its mask with ``bernoulli_``: one Mersenne-Twister
number per element. On a 2-core CPU that made dropout about as costly as the matmuls around
it (``aten::bernoulli_`` was 11 % of a full-size generator step, docs/RESULTS.md, "Speed").
Here one 64-bit random word gives the keep/drop decision of four elements (16 random bits
each), so the mask costs a quarter of the draws and none of bernoulli's per-element work,
and the mask is made and saved already scaled, so each pass applies it with one
multiplication. The distribution is dropout's: every element is kept independently with probability
``1 - p`` (``p`` rounded to a multiple of 1/65536, i.e. off by at most 7.7e-6) and kept
elements are scaled by ``1 / (1 - p)``. Draws come from torch's default generator, so
``torch.manual_seed`` (RecBole's ``init_seed``) makes runs repeat exactly.

Off the CPU (CUDA's dropout is a fused Philox kernel) and in eval mode this is
``torch.nn.functional.dropout``.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout", "dropout", "keep_mask", "scaled_keep_mask"]

_LANES_PER_WORD = 4  # a full-range int64 from random_(min, None) is 64 random bits: 4 int16 lanes


def _random_lanes(n: int, device=None) -> torch.Tensor:
    """``n`` independent int16 values, uniform over all 65536, from ``ceil(n / 4)`` 64-bit
    words of torch's default generator (contiguous, so the comparison after is vectorised)."""
    words = torch.empty((n + _LANES_PER_WORD - 1) // _LANES_PER_WORD, dtype=torch.int64,
                        device=device).random_(torch.iinfo(torch.int64).min, None)
    return words.view(torch.int16)[:n]


def _dropped_values(p: float) -> int:
    """How many of the 65536 lane values drop an element: ``round(p * 65536)``."""
    return round(p * 65536)


def _lanes_express(p: float) -> bool:
    """Whether a 16-bit lane can express rate ``p``: ``0 <= p < 1 - 2**-17`` (a rate within
    ``2**-17`` of 1 rounds to dropping all 65536 values, past the int16 threshold)."""
    return 0 <= _dropped_values(p) < 65536


def _threshold(p: float) -> int:
    if not _lanes_express(p):
        raise ValueError(f"dropout rate {p} rounds to {_dropped_values(p)}/65536 dropped values: "
                         f"the 16-bit mask needs 0 <= p < 1 - 2**-17")
    return -32768 + _dropped_values(p)  # drop the lowest round(p * 65536) lane values


# the integer type of each float type's width: a mask is built as integers, then reinterpreted
_SAME_WIDTH_INT = {torch.bfloat16: torch.int16, torch.float16: torch.int16,
                   torch.float32: torch.int32, torch.float64: torch.int64}


def keep_mask(shape, p: float, device=None) -> torch.Tensor:
    """Bool tensor of ``shape``: True with probability ``1 - p`` (quantised to 1/65536),
    independently per element."""
    return (_random_lanes(math.prod(shape), device) >= _threshold(p)).view(shape)


def scaled_keep_mask(shape, p: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    """The mask of :func:`keep_mask` already in ``dtype`` and scaled: ``1 / (1 - p)`` where
    kept, 0 where dropped (the same draws as :func:`keep_mask` drop the same elements).

    Built as integers of ``dtype``'s width: the comparison writes 1 or 0, multiplied by the
    bit pattern of ``dtype(1 / (1 - p))``, and the result is reinterpreted as ``dtype``. The
    values are bitwise those of converting the bool mask and scaling it, without the two
    slow passes on the CPU (a bool result, then a bool-to-float conversion): on an FFN-sized
    mask the work after the random draws fell 4x in bfloat16, 1.7x in float32
    (docs/RESULTS.md, "Speed")."""
    n = math.prod(shape)
    int_type = _SAME_WIDTH_INT.get(dtype)
    if int_type is None:
        return keep_mask(shape, p, device).to(dtype).mul_(1.0 / (1.0 - p))
    keep = torch.ge(_random_lanes(n, device), _threshold(p),
                    out=torch.empty(n, dtype=int_type, device=device))
    return keep.mul_(_scale_bits(p, dtype, int_type)).view(dtype).view(shape)


@functools.lru_cache(maxsize=None)
def _scale_bits(p: float, dtype: torch.dtype, int_type: torch.dtype) -> int:
    """The bit pattern of ``dtype(1 / (1 - p))`` as an ``int_type`` value, made once per
    rate and type instead of a tensor per mask (a few hundred masks per training step)."""
    return torch.tensor(1.0 / (1.0 - p), dtype=dtype).view(int_type).item()


class _MaskedScale(torch.autograd.Function):
    """``x * mask`` for a mask of ``0`` and ``1 / (1 - p)``, saving the mask in ``x``'s type.

    Saving it scaled costs 4 bytes per element (2 under bfloat16) against native dropout's 1,
    and spares a conversion and a multiplication in both passes (benchmarks/bench_dropout.py)."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Functional form of :class:`Dropout`."""
    if not training or p == 0.0:
        return x
    if (not Dropout.cheap_cpu_mask or x.device.type != "cpu" or not _lanes_express(p)
            or not x.dtype.is_floating_point):
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, scaled_keep_mask(x.shape, p, x.dtype, x.device))


class Dropout(nn.Dropout):
    """Drop-in for :class:`torch.nn.Dropout` (same ``p``, no state) with the CPU mask above."""

    # False: torch's own dropout everywhere (benchmarks/bench_dropout.py compares the two)
    cheap_cpu_mask = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
