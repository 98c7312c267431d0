"""The one row-alignment helper every per-item table goes through."""
import numpy as np

from recbole_bbq.data.alignment import align_rows


def test_rows_follow_the_dataset_order_and_missing_items_are_named():
    source = ["c", "a", "x", "b"]            # a table written in its own order
    target = ["[PAD]", "a", "b", "c", "d"]   # the dataset's internal ids, 0 = padding
    rows, missing = align_rows(source, target)
    assert rows.dtype == np.int64
    assert rows.tolist() == [1, 3, 0, -1]
    assert missing == ["d"]


def test_empty_dataset_and_identical_order():
    assert align_rows(["a"], ["[PAD]"])[0].tolist() == []
    rows, missing = align_rows(["[PAD]", "a", "b"], ["[PAD]", "a", "b"])
    assert rows.tolist() == [1, 2] and missing == []
