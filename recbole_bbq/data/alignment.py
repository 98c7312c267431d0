"""Re-aligning per-item tables (features, semantic IDs, embeddings) to a dataset by item token.

A table saved by another run or written by ``dataset_prep`` has its own row order; a RecBole
dataset numbers items by its own internal ids, with row 0 the padding item. Every place that
reads such a table goes through :func:`align_rows`, and names the missing items in its own
error.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def align_rows(source_tokens: Sequence, target_tokens: Sequence) -> Tuple[np.ndarray, list]:
    """The row in the source table of each target item after the padding row.

    Args:
        source_tokens: item token of each row of the table being read.
        target_tokens: item tokens in the dataset's internal-id order; index 0 is padding.

    Returns:
        ``rows`` (int64, ``len(target_tokens) - 1``): source row of items 1.., -1 where the
        source has no such token; and ``missing``: those tokens, in target order.
    """
    row_of = {token: row for row, token in enumerate(source_tokens)}
    rows = np.fromiter((row_of.get(t, -1) for t in target_tokens[1:]), dtype=np.int64,
                       count=max(len(target_tokens) - 1, 0))
    missing = [t for t, row in zip(target_tokens[1:], rows) if row < 0]
    return rows, missing
