"""Length bucketing: run right-padded histories as length-sorted, trimmed chunks.

RecBole right-pads every history to MAX_ITEM_LIST_LENGTH; most are much shorter (Beauty:
4.5 items on average of 20). A causal or padding-masked encoder gives every row exactly the
same output when its chunk is trimmed to the chunk's longest history, at a fraction of the
cost. Used by the generator (stage 2) and BBQRec's contrastive task (stage 1).
"""
from __future__ import annotations

import torch


def length_sorted_chunks(lengths: torch.Tensor, n_chunks: int):
    """Yield ``(rows, width)``: up to ``n_chunks`` groups of row indices sorted by length,
    each with its longest length (at least 1)."""
    order = torch.argsort(lengths, stable=True)
    for rows in torch.tensor_split(order, max(1, min(n_chunks, len(order)))):
        if len(rows):
            yield rows, max(int(lengths[rows].max()), 1)
