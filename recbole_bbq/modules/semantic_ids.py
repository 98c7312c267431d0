"""Semantic-ID bookkeeping shared by every tokenizer: utilisation, collisions, the extra level.

Two items "collide" when their L codes are identical (BBQRec Table 5). TIGER resolves
collisions by appending one more level that numbers the items of each colliding group
0, 1, 2, ...; the extra level's vocabulary is the largest group size. Items that already
have a unique ID get 0 there. The extra level is only added when collisions remain.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class SemanticIDTableError(ValueError):
    """A semantic-ID table (``semantic_ids_file``) that is missing, malformed or does not
    cover the dataset's items."""


@dataclass
class SemanticIDs:
    codes: np.ndarray  # [n_items, n_levels] int64; row 0 (padding item) is all -1
    level_sizes: list  # vocabulary size of each level
    stats: dict = field(default_factory=dict)

    @property
    def n_levels(self) -> int:
        return self.codes.shape[1]


def codebook_utilisation(codes: np.ndarray, level_sizes) -> list:
    """Fraction of each level's codes used by at least one item."""
    return [
        float(len(np.unique(codes[:, level])) / size) for level, size in enumerate(level_sizes)
    ]


def collision_stats(codes: np.ndarray) -> dict:
    """Items sharing a full ID with another item, and the size of the largest such group."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    group_size = counts[inverse]
    return {
        "n_items": int(len(codes)),
        "n_unique_ids": int(len(counts)),
        "colliding_items": int((group_size > 1).sum()),
        "max_group_size": int(counts.max()) if len(counts) else 0,
    }


def append_disambiguation_level(codes: np.ndarray) -> np.ndarray:
    """``codes`` plus one column numbering the items within each group of identical IDs."""
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    rank = np.empty(len(codes), dtype=np.int64)
    sorted_groups = inverse[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    rank[order] = np.arange(len(codes)) - group_start
    return np.concatenate([codes, rank[:, None]], axis=1)


def tuple_tokens(per_signal_codes: np.ndarray):
    """One token per level from several signals' codes (BBQRec sec. 4.1.2, PQ-style IDs).

    ``per_signal_codes [S, n, L]`` holds each signal's residual codes of items ``1..n``. At
    level ``l`` every distinct tuple ``(c^l_s1, c^l_s2, ...)`` that occurs becomes one dense
    token id (tuples numbered in lexicographic order), so the ID keeps length ``L`` and the
    level's vocabulary is the set of tuples that actually occur.

    Returns ``(codes [n, L] int64, level_sizes)``. Collisions and the extra level are left
    to :func:`build_semantic_ids`.
    """
    per_signal_codes = np.asarray(per_signal_codes, dtype=np.int64)
    if per_signal_codes.ndim != 3 or per_signal_codes.shape[0] < 1:
        raise ValueError(f"per_signal_codes must be [S, n, L], got {per_signal_codes.shape}")
    _, n, n_levels = per_signal_codes.shape
    codes = np.empty((n, n_levels), dtype=np.int64)
    level_sizes = []
    for level in range(n_levels):
        tuples = per_signal_codes[:, :, level].T  # [n, S]
        unique, inverse = np.unique(tuples, axis=0, return_inverse=True)
        codes[:, level] = inverse.reshape(-1)
        level_sizes.append(int(len(unique)))
    return codes, level_sizes


def build_semantic_ids(item_codes: np.ndarray, level_sizes, resolve_collisions: bool = True) -> SemanticIDs:
    """Semantic IDs for items ``1..n`` from their codes ``[n, L]`` (padding row 0 is added).

    Records utilisation and collisions before the extra level; appends the extra level only
    when ``resolve_collisions`` and collisions remain.
    """
    item_codes = np.asarray(item_codes, dtype=np.int64)
    level_sizes = [int(s) for s in level_sizes]
    stats = {
        "utilisation": codebook_utilisation(item_codes, level_sizes),
        "collisions_before_extra_level": collision_stats(item_codes),
    }
    extra = resolve_collisions and stats["collisions_before_extra_level"]["colliding_items"] > 0
    if extra:
        item_codes = append_disambiguation_level(item_codes)
        level_sizes = level_sizes + [int(item_codes[:, -1].max()) + 1]
    stats["extra_level"] = bool(extra)
    stats["collisions_after"] = collision_stats(item_codes)
    padded = np.full((len(item_codes) + 1, item_codes.shape[1]), -1, dtype=np.int64)
    padded[1:] = item_codes
    return SemanticIDs(padded, level_sizes, stats)


def semantic_id_table(item_tokens, codes) -> str:
    """The semantic-ID table as TSV text: ``item_id``, ``level_1..L``, one row per item
    (rows 1.. of ``codes [n_items, L]``; row 0 is padding)."""
    lines = ["item_id\t" + "\t".join(f"level_{i + 1}" for i in range(codes.shape[1]))]
    lines += [f"{tok}\t" + "\t".join(map(str, row))
              for tok, row in zip(item_tokens[1:], codes[1:])]
    return "\n".join(lines) + "\n"


def read_semantic_id_table(path) -> tuple:
    """Read a table in :func:`semantic_id_table`'s format: a header ``item_id level_1 ..
    level_L`` (tab-separated), then one row per item with L non-negative integer codes.

    Returns ``(item_tokens, codes [n, L] int64)`` in file order. Every problem raises
    :class:`SemanticIDTableError` naming the file and the line or item at fault.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise SemanticIDTableError(f"semantic_ids_file {path}: cannot be read ({exc.strerror})") from exc
    rows = [(number, line.split("\t")) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows or rows[0][1][0].split(":")[0] != "item_id" or len(rows[0][1]) < 2:
        raise SemanticIDTableError(
            f"semantic_ids_file {path}: the first line must be the header "
            f"'item_id<TAB>level_1<TAB>...' (the table a run writes beside its tokenizer)")
    n_levels = len(rows[0][1]) - 1
    tokens, codes, seen = [], [], {}
    for number, fields in rows[1:]:
        if len(fields) != n_levels + 1:
            raise SemanticIDTableError(
                f"semantic_ids_file {path}, line {number}: {len(fields) - 1} codes, "
                f"the header has {n_levels} levels")
        token = fields[0].strip()
        if token in seen:
            raise SemanticIDTableError(
                f"semantic_ids_file {path}, line {number}: item {token!r} already has an ID "
                f"(line {seen[token]})")
        try:
            row = [int(value) for value in fields[1:]]
        except ValueError:
            raise SemanticIDTableError(
                f"semantic_ids_file {path}, line {number}: item {token!r} has a code that is "
                f"not an integer: {fields[1:]}") from None
        if min(row) < 0:
            raise SemanticIDTableError(
                f"semantic_ids_file {path}, line {number}: item {token!r} has a negative code")
        seen[token] = number
        tokens.append(token)
        codes.append(row)
    if not tokens:
        raise SemanticIDTableError(f"semantic_ids_file {path}: no item rows after the header")
    return tokens, np.asarray(codes, dtype=np.int64)
