"""Where length bucketing cuts a batch: every row once, each chunk trimmed to its own longest
history, and the cuts pad least."""
import itertools

import pytest
import torch

import recbole_bbq.modules.length_buckets as length_buckets
from recbole_bbq.modules.length_buckets import least_padding_bounds, length_sorted_chunks


def padded_slots(sorted_lengths, bounds):
    return sum(sorted_lengths[end - 1] * (end - start) for start, end in zip(bounds[:-1], bounds[1:]))


def best_by_brute_force(sorted_lengths, n_chunks):
    n = len(sorted_lengths)
    best = None
    for k in range(1, n_chunks + 1):
        for cuts in itertools.combinations(range(1, n), k - 1):
            cost = padded_slots(sorted_lengths, [0, *cuts, n])
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_the_cuts_pad_least(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 11, (1,), generator=g))
    sorted_lengths = sorted(torch.randint(1, 9, (n,), generator=g).tolist())
    for n_chunks in (1, 2, 3, 4):
        bounds = least_padding_bounds(sorted_lengths, n_chunks)
        assert bounds[0] == 0 and bounds[-1] == n and len(bounds) - 1 <= n_chunks
        assert all(a < b for a, b in zip(bounds[:-1], bounds[1:]))
        assert padded_slots(sorted_lengths, bounds) == best_by_brute_force(sorted_lengths, n_chunks)


def test_skewed_lengths_pad_less_than_equal_counts(monkeypatch):
    lengths = torch.tensor([1] * 40 + [2] * 10 + [3] * 6 + [20] * 8)[torch.randperm(64)]

    def slots(split):
        monkeypatch.setattr(length_buckets, "SPLIT", split)
        chunks = list(length_sorted_chunks(lengths, 4))
        rows = torch.cat([r for r, _ in chunks])
        assert sorted(rows.tolist()) == list(range(64))  # every row exactly once
        assert all(w == int(lengths[r].max()) for r, w in chunks)  # trimmed to its longest
        return sum(w * len(r) for r, w in chunks)

    assert slots("least_padding") == 40 * 1 + 10 * 2 + 6 * 3 + 8 * 20  # one chunk per length
    assert slots("equal") == 16 * 1 + 16 * 1 + 16 * 2 + 16 * 20


def test_empty_histories_get_width_one():
    chunks = list(length_sorted_chunks(torch.tensor([0, 0, 3, 5, 0]), 2))
    assert [w for _, w in chunks] == [1, 5]  # 3 * 1 + 2 * 5 slots, against 4 * 3 + 1 * 5
    assert sorted(chunks[0][0].tolist()) == [0, 1, 4] and sorted(chunks[1][0].tolist()) == [2, 3]


def test_auto_cuts_where_padding_is_least_except_under_cpu_autocast():
    lengths = torch.tensor([1] * 40 + [2] * 10 + [3] * 6 + [20] * 8)
    assert length_buckets.SPLIT == "auto"
    rows = [len(r) for r, _ in length_sorted_chunks(lengths, 4)]
    assert rows == [40, 10, 6, 8]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert [len(r) for r, _ in length_sorted_chunks(lengths, 4)] == [16, 16, 16, 16]
