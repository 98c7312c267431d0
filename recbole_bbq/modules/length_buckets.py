"""Length bucketing: run right-padded histories as length-sorted, trimmed chunks.

RecBole right-pads every history to MAX_ITEM_LIST_LENGTH; most are much shorter (Beauty:
4.5 items on average of 20). A causal or padding-masked encoder gives every row exactly the
same output when its chunk is trimmed to the chunk's longest history, at a fraction of the
cost. Used by the generator (stage 2) and BBQRec's contrastive task (stage 1).

Where a batch is cut matters as much as into how many chunks: cutting the length-sorted rows
into equal counts pads each chunk up to a length that a few rows reach, while cutting where
the padded slots ``sum(width * rows)`` are least (a small dynamic programme over the distinct
lengths) pads less with the same number of chunks. On Beauty's training batches of 256 the
encoder then runs 1.21 times the real history slots with 4 chunks, against 1.32 with equal
counts (and 1.18 with 8 equal chunks): 1.075x the training samples/s at half size, 1.087x at
full size in float32; under bfloat16 autocast on the CPU the equal cut stays, being faster
there (docs/RESULTS.md, "Length buckets cut where they pad least").
"""
from __future__ import annotations

from typing import List, Sequence

import torch

# "auto" (default): where they pad least, except under CPU autocast, where the uneven chunks'
# small products cost bfloat16 more than the padding saves (full size: 274 against 284
# samples/s with equal row counts); "least_padding" or "equal" force one
# (benchmarks/bench_length_buckets.py --split [--amp] times both)
SPLIT = "auto"


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def least_padding_bounds(sorted_lengths: Sequence[int], n_chunks: int) -> List[int]:
    """Cut points ``[0, ..., n]`` of at most ``n_chunks`` consecutive groups of the ascending
    ``sorted_lengths`` that minimise ``sum(max length of group * rows of group)``.

    Groups only end where the length changes (a group never splits rows of equal length),
    so the programme runs over the distinct lengths: ``O(n_chunks * distinct^2)``.
    """
    n = len(sorted_lengths)
    ends = [i + 1 for i in range(n) if i + 1 == n or sorted_lengths[i + 1] != sorted_lengths[i]]
    if len(ends) <= n_chunks:
        return [0] + ends
    # cost[e]: least padded slots of rows [0, ends[e]) in the groups allowed so far;
    # cut_from[j][e]: where the last of j + 1 groups starts (index into ends), -1 for "no
    # extra group: the j-group answer"
    cost = [sorted_lengths[end - 1] * end for end in ends]
    cut_from: List[List[int]] = []
    for _ in range(1, n_chunks):
        new_cost, new_from = list(cost), [-1] * len(ends)
        for e, end in enumerate(ends):
            width = sorted_lengths[end - 1]
            for s in range(e):  # the last group is rows [ends[s], end)
                c = cost[s] + width * (end - ends[s])
                if c < new_cost[e]:
                    new_cost[e], new_from[e] = c, s
        cost = new_cost
        cut_from.append(new_from)
    bounds, e = [n], len(ends) - 1
    for new_from in reversed(cut_from):
        if new_from[e] >= 0:
            e = new_from[e]
            bounds.append(ends[e])
    return [0] + bounds[::-1]


def length_sorted_chunks(lengths: torch.Tensor, n_chunks: int):
    """Yield ``(rows, width)``: up to ``n_chunks`` groups of row indices sorted by length,
    each with its longest length (at least 1), cut where they pad least or into equal row
    counts (``SPLIT``)."""
    order = torch.argsort(lengths, stable=True)
    n_chunks = max(1, min(n_chunks, len(order)))
    split = SPLIT
    if split == "auto":
        split = "equal" if lengths.device.type == "cpu" and _cpu_autocast() else "least_padding"
    if split == "equal" or n_chunks == 1:
        for rows in torch.tensor_split(order, n_chunks):
            if len(rows):
                yield rows, max(int(lengths[rows].max()), 1)
        return
    sorted_lengths = lengths[order].clamp(min=1).tolist()
    bounds = least_padding_bounds(sorted_lengths, n_chunks)
    for start, end in zip(bounds[:-1], bounds[1:]):
        yield order[start:end], sorted_lengths[end - 1]


# Measured on Beauty (TIGER generator, d_model 64, batch 256): on 2 CPU cores 4 chunks run
# the epoch faster, since the work is arithmetic; on an H100 the step is bound by kernel
# launches, and 4 chunks take 3.6x longer than 1 (71 vs 20 ms per step), so "auto" picks
# by device. With least-padding cuts, 6 and 8 chunks were slower than 4 at half size and
# tied with it at full size.
AUTO_BUCKETS = {"cpu": 4, "cuda": 1}


def resolve_length_buckets(value, device) -> int:
    """The ``length_buckets`` setting as a chunk count: a positive integer, or ``auto``
    (or empty) for the device's default."""
    if value is None or str(value).lower() == "auto":
        return AUTO_BUCKETS.get(torch.device(device).type, 1)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(n) != str(value).strip():
        raise ValueError(f"length_buckets must be a positive integer or 'auto', got {value!r}")
    return n
