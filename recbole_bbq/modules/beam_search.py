"""Constrained beam search over valid semantic IDs, and conversion to full-ranking scores.

Generative recommenders (TIGER, BBQRec) rank items by decoding the next item's semantic ID
``(c_1, ..., c_L)`` with beam search restricted to prefixes that exist in the catalogue
(TIGER's constrained decoding), scoring each by BBQRec's eq. 1,
``P(i_{t+1} | S_t) = prod_j P(c_j | c_1..c_{j-1}, S_t)``.
:class:`SemanticIDTrie` stores those prefixes level by level as padded child tables;
:func:`constrained_beam_search` runs the batched search; :func:`scores_for_all_items` turns
the surviving beams into the ``[batch, n_items]`` score matrix that RecBole's full-ranking
evaluator expects.

Scores are true model log-probabilities
---------------------------------------
At every level the log-softmax is taken over the level's FULL vocabulary and only then are
the allowed children gathered; by default (``level_scores="model"``) the distribution is NOT
renormalised over the allowed children. A beam's score is therefore ``log p(ID | history) =
sum_l log p(c_l | c_<l, history)`` under the trained model, exactly what scoring every
item's ID by teacher forcing would give. Renormalising would inflate IDs whose prefix has
few valid continuations (a prefix with a single child would pass its whole mass on, whatever
the model thinks of that child) and would make the search rank by a quantity the model was
never trained to output.
``level_scores="children"`` does exactly that, as a diagnostic
(``benchmarks/probe_level_normalisation.py``): each level's softmax restricted to the node's
valid children, so the scores of all valid IDs sum to one.

Beam size and the number of finite scores
-----------------------------------------
Only IDs reached by a surviving beam get a finite score; every other item gets ``-inf``.
RecBole takes ``topk`` over the score matrix and compares positions against the target. If
a row had fewer than ``max(topk)`` finite scores, the tail of its top-k would be an
arbitrary pick among ``-inf`` ties — possibly the target item, which would then be counted
as a hit although the model never generated it. Hence the beam size must be ``>=
max(topk)``; the search guarantees ``min(beam_size, number of distinct IDs)`` finite beams
per row (each beam's leaf contributes all the items sharing that ID, so at least as many
finite items), so with ``beam_size >= max(topk)`` and a catalogue with at least ``max(topk)``
IDs every row has at least ``max(topk)`` finite scores.

Pure PyTorch / NumPy; no RecBole import.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["SemanticIDTrie", "constrained_beam_search", "scores_for_all_items"]


class SemanticIDTrie:
    """Prefix tree over the semantic IDs of the candidate items.

    Args:
        codes: integer array/tensor ``[n_items, n_levels]``; row ``r`` is item ``r``'s
            semantic ID. Rows that are entirely ``-1`` (e.g. RecBole's padding item 0) are not
            candidates. Other negative entries are an error.
        level_sizes: optional vocabulary size per level; checked against the codes (defaults
            to ``max code + 1`` per level).

    Node numbering: depth ``d`` (prefix length ``d``, ``0..n_levels``) has ``n_nodes[d]``
    nodes numbered in lexicographic order of their prefixes; depth 0 is the single root and
    depth ``n_levels`` nodes are the *leaves* (one per distinct full ID).

    Attributes (torch tensors, moved by :meth:`to`):
        children_codes[d]: ``[n_nodes[d], max_children[d]]`` codes of level ``d`` that extend
            each depth-``d`` node, ascending, padded with -1.
        children_ids[d]: same shape, the depth-``d+1`` node id of each child, -1 padded.
        leaf_ptr: ``[n_leaves + 1]`` CSR offsets and leaf_item ``[n_candidates]``: the items of
            leaf ``f`` are ``leaf_item[leaf_ptr[f]:leaf_ptr[f+1]]`` (ascending item index).
        item_leaf: ``[n_items]`` leaf of every item, -1 for non-candidates.
        leaf_codes: ``[n_leaves, n_levels]`` full ID of every leaf.
    """

    def __init__(self, codes, level_sizes: Optional[Sequence[int]] = None):
        if isinstance(codes, torch.Tensor):
            codes_np = codes.detach().cpu().numpy()
        else:
            codes_np = np.asarray(codes)
        if codes_np.ndim != 2 or codes_np.shape[1] < 1:
            raise ValueError(f"codes must be [n_items, n_levels], got shape {codes_np.shape}")
        codes_np = codes_np.astype(np.int64, copy=False)
        n_items, n_levels = codes_np.shape
        self.n_items = int(n_items)
        self._n_levels = int(n_levels)

        neg = codes_np < 0
        invalid = neg.all(axis=1)
        if (neg.any(axis=1) & ~invalid).any():
            bad = np.nonzero(neg.any(axis=1) & ~invalid)[0][:5].tolist()
            raise ValueError(f"rows {bad} mix negative and valid codes; use all -1 for padding")
        valid_items = np.nonzero(~invalid)[0]
        vc = codes_np[valid_items]  # [n_valid, L]

        if level_sizes is None:
            sizes = (vc.max(axis=0) + 1) if len(vc) else np.ones(n_levels, dtype=np.int64)
            self.level_sizes: List[int] = [int(s) for s in sizes]
        else:
            self.level_sizes = [int(s) for s in level_sizes]
            if len(self.level_sizes) != n_levels:
                raise ValueError("len(level_sizes) != number of code columns")
            if len(vc) and (vc.max(axis=0) >= np.asarray(self.level_sizes)).any():
                raise ValueError("a code exceeds its level size")

        # lexicographic sort (level 0 most significant); lexsort is stable -> ties by item id
        order = np.lexsort(vc.T[::-1]) if len(vc) else np.zeros(0, dtype=np.int64)
        sc = vc[order]
        sorted_items = valid_items[order]
        n = len(sc)

        # node id of every sorted item at each depth 0..L
        node_of = np.zeros((n_levels + 1, n), dtype=np.int64)
        if n > 1:
            changed = np.logical_or.accumulate(sc[1:] != sc[:-1], axis=1)  # [n-1, L]
            for d in range(1, n_levels + 1):
                node_of[d, 1:] = np.cumsum(changed[:, d - 1])
        n_nodes = [1] + [int(node_of[d, -1]) + 1 if n else 0 for d in range(1, n_levels + 1)]
        self.n_nodes = n_nodes

        self.children_codes: List[torch.Tensor] = []
        self.children_ids: List[torch.Tensor] = []
        self.max_children: List[int] = []
        for d in range(n_levels):
            n_child = n_nodes[d + 1]
            if n_child == 0:
                cc = np.full((n_nodes[d], 1), -1, dtype=np.int64)
                self.children_codes.append(torch.from_numpy(cc))
                self.children_ids.append(torch.from_numpy(cc.copy()))
                self.max_children.append(0)
                continue
            # first sorted item of each depth-(d+1) node
            first = np.ones(n, dtype=bool)
            first[1:] = node_of[d + 1, 1:] != node_of[d + 1, :-1]
            first_idx = np.nonzero(first)[0]  # in child-node order
            parent = node_of[d, first_idx]
            child_code = sc[first_idx, d]
            child_id = node_of[d + 1, first_idx]
            counts = np.bincount(parent, minlength=n_nodes[d])
            start = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.arange(n_child) - start[parent]
            width = int(counts.max())
            cc = np.full((n_nodes[d], width), -1, dtype=np.int64)
            ci = np.full((n_nodes[d], width), -1, dtype=np.int64)
            cc[parent, rank] = child_code
            ci[parent, rank] = child_id
            self.children_codes.append(torch.from_numpy(cc))
            self.children_ids.append(torch.from_numpy(ci))
            self.max_children.append(width)

        n_leaves = n_nodes[n_levels]
        leaf_of_sorted = node_of[n_levels]
        leaf_counts = np.bincount(leaf_of_sorted, minlength=n_leaves)
        leaf_ptr = np.zeros(n_leaves + 1, dtype=np.int64)
        leaf_ptr[1:] = np.cumsum(leaf_counts)
        item_leaf = np.full(n_items, -1, dtype=np.int64)
        item_leaf[sorted_items] = leaf_of_sorted
        leaf_codes = sc[leaf_ptr[:-1]] if n_leaves else np.zeros((0, n_levels), np.int64)

        self.leaf_ptr = torch.from_numpy(leaf_ptr)
        self.leaf_item = torch.from_numpy(np.ascontiguousarray(sorted_items))
        self.item_leaf = torch.from_numpy(item_leaf)
        self.leaf_codes = torch.from_numpy(np.ascontiguousarray(leaf_codes))
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ properties
    @property
    def n_levels(self) -> int:
        return self._n_levels

    @property
    def n_leaves(self) -> int:
        """Number of distinct full IDs among the candidate items."""
        return self.n_nodes[self._n_levels]

    @property
    def leaf_items(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """CSR ``(leaf_ptr, leaf_item)``: items of leaf ``f`` are ``leaf_item[ptr[f]:ptr[f+1]]``."""
        return self.leaf_ptr, self.leaf_item

    def items_of_leaf(self, leaf: int) -> torch.Tensor:
        return self.leaf_item[self.leaf_ptr[leaf] : self.leaf_ptr[leaf + 1]]

    def leaf_sizes(self) -> torch.Tensor:
        """Number of items sharing each leaf's ID, ``[n_leaves]``."""
        return self.leaf_ptr[1:] - self.leaf_ptr[:-1]

    def to(self, device) -> "SemanticIDTrie":
        """Move all tables to ``device`` (in place); returns self."""
        device = torch.device(device)
        self.children_codes = [t.to(device) for t in self.children_codes]
        self.children_ids = [t.to(device) for t in self.children_ids]
        self.leaf_ptr = self.leaf_ptr.to(device)
        self.leaf_item = self.leaf_item.to(device)
        self.item_leaf = self.item_leaf.to(device)
        self.leaf_codes = self.leaf_codes.to(device)
        self.device = device
        return self

    def __repr__(self) -> str:
        return (
            f"SemanticIDTrie(n_items={self.n_items}, n_levels={self.n_levels}, "
            f"n_leaves={self.n_leaves}, nodes_per_depth={self.n_nodes}, "
            f"max_children={self.max_children})"
        )


@torch.no_grad()
def constrained_beam_search(
    generator,
    history_codes: torch.Tensor,
    history_mask: torch.Tensor,
    trie: SemanticIDTrie,
    beam_size: int,
    use_cache: bool = True,
    return_pruned_bound: bool = False,
    level_scores: str = "model",
    **attn_kwargs,
):
    """Batched beam search over the IDs in ``trie`` (eq. 1's next-ID generation, constrained
    to IDs that exist); returns leaves and their log-probs.

    The history is encoded once; the ``K`` beams of a user share its encoder output (the
    generator decodes ``K`` prefixes per memory row without copying the memory), and by
    default decoding is incremental with a key/value cache reordered as beams are selected.
    At level ``l`` each beam's next-level log-softmax is computed over the full level-``l``
    vocabulary (no renormalisation over allowed children under the default
    ``level_scores="model"``, so the final scores are exact ``log p(ID | history)``, see the
    module docstring), the allowed children of the beam's trie node are gathered and added
    to the beam score, and the best ``beam_size`` (beam, child) pairs are kept, invalid (-1
    padded) children masked to ``-inf``. Level 0 starts from the root.

    Args:
        generator: a :class:`~recbole_bbq.modules.generator.SemanticIDGenerator` (anything
            with ``encode``, ``decode_logits`` and ``n_levels``).
        history_codes: ``[B, T, n_levels]``; history_mask: ``[B, T]`` bool.
        trie: candidate IDs, on the generator's device (see :meth:`SemanticIDTrie.to`).
        beam_size: beams kept per level; must be ``>= max(topk)`` for evaluation.
        use_cache: decode incrementally with ``generator.start_decoding`` / ``decode_step``
            (key/value cache, memory projected once; about 2x faster); False (or a generator
            without that API) re-decodes each beam's whole prefix with ``decode_logits``.
            Both give the same scores.
        return_pruned_bound: also return ``pruned_bound [B]`` (float32): the best score of
            any prefix the search dropped (``-inf`` if it dropped none). A prefix's score
            bounds every full ID below it (log-probabilities only fall as levels are added),
            so no ID the search did not return scores above it: a returned ID scoring above
            ``pruned_bound`` holds the same rank in the exact ranking of every ID.
        level_scores: ``"model"`` (default): each level's log-softmax over the full vocabulary,
            so scores are ``log p(ID | history)``. ``"children"``: the log-softmax over the
            node's valid children only, so a prefix with one child passes its score on
            unchanged (a diagnostic of how much the trained model loses by spreading mass
            over IDs that do not exist; ``benchmarks/probe_level_normalisation.py``). Each
            level still adds a log-probability <= 0, so ``pruned_bound`` bounds either way.
        **attn_kwargs: forwarded to ``generator.encode``.
    Returns:
        ``leaf_ids [B, K]`` (LongTensor, trie leaf ids, -1 for unfilled beams) and
        ``log_probs [B, K]`` (float32, sorted descending, ``-inf`` for unfilled beams; under
        ``level_scores="children"`` the sums of the restricted per-level log-probabilities), with
        ``K = min(beam_size, trie.n_leaves)``. With the usual trie every row has all ``K``
        beams filled; ``-inf``/-1 only appear if a row could not reach ``K`` IDs. Use
        :func:`scores_for_all_items` to map them to items. With ``return_pruned_bound``, a
        third tensor ``pruned_bound [B]`` (see above).

    The generator is put in eval mode for the search and its previous mode is restored.
    """
    if beam_size < 1:
        raise ValueError("beam_size must be >= 1")
    if level_scores not in ("model", "children"):
        raise ValueError(f"level_scores must be 'model' or 'children', got {level_scores!r}")
    if trie.n_levels != generator.n_levels:
        raise ValueError(f"trie has {trie.n_levels} levels, generator {generator.n_levels}")
    for l, (ts, gs) in enumerate(zip(trie.level_sizes, generator.level_sizes)):
        if ts > gs:
            raise ValueError(f"level {l}: trie codes reach {ts} but generator vocab is {gs}")

    device = history_codes.device
    B = history_codes.shape[0]
    K_final = min(beam_size, trie.n_leaves)
    pruned_bound = torch.full((B,), float("-inf"), device=device) if return_pruned_bound else None
    if K_final == 0 or B == 0:
        empty = (
            torch.full((B, K_final), -1, dtype=torch.long, device=device),
            torch.full((B, K_final), float("-inf"), device=device),
        )
        return (*empty, pruned_bound) if return_pruned_bound else empty

    was_training = generator.training
    generator.eval()
    try:
        memory, memory_mask = generator.encode(history_codes, history_mask, **attn_kwargs)
        cached = use_cache and hasattr(generator, "start_decoding")
        state = generator.start_decoding(memory, memory_mask) if cached else None
        node = torch.zeros(B, 1, dtype=torch.long, device=device)  # root
        score = torch.zeros(B, 1, dtype=torch.float32, device=device)
        prefix = torch.zeros(B, 1, 0, dtype=torch.long, device=device)
        neg_inf = float("-inf")
        for l in range(trie.n_levels):
            K_cur = node.shape[1]
            if cached:
                prev = prefix[:, :, -1].reshape(B * K_cur) if l > 0 else None
                logits = generator.decode_step(state, prev)
            else:
                logits = generator.decode_logits(memory, memory_mask, prefix.reshape(B * K_cur, l))
            alive = node >= 0  # [B, K_cur]
            safe_node = node.clamp(min=0)
            ch_codes = trie.children_codes[l][safe_node]  # [B, K_cur, C]
            ch_ids = trie.children_ids[l][safe_node]
            C = ch_codes.shape[-1]
            valid = (ch_codes >= 0) & alive.unsqueeze(-1)
            if level_scores == "model":
                logp = torch.log_softmax(logits.float(), dim=-1).view(B, K_cur, -1)
                child_logp = logp.gather(-1, ch_codes.clamp(min=0))
            else:
                child_logits = logits.float().view(B, K_cur, -1).gather(-1, ch_codes.clamp(min=0))
                child_logp = torch.log_softmax(child_logits.masked_fill(~valid, neg_inf), dim=-1)
            cand = score.unsqueeze(-1) + child_logp
            cand = cand.masked_fill(~valid, neg_inf).view(B, K_cur * C)
            k = min(beam_size, K_cur * C)
            if return_pruned_bound and k < K_cur * C:  # the best candidate left out
                top, idx = cand.topk(k + 1, dim=1)
                pruned_bound = torch.maximum(pruned_bound, top[:, k])
                top, idx = top[:, :k], idx[:, :k]
            else:
                top, idx = cand.topk(k, dim=1)  # sorted descending
            took_valid = valid.view(B, K_cur * C).gather(1, idx)
            src_beam = idx // C
            new_code = ch_codes.view(B, -1).gather(1, idx).clamp(min=0)
            node = ch_ids.view(B, -1).gather(1, idx).masked_fill(~took_valid, -1)
            score = top.masked_fill(~took_valid, neg_inf)
            if cached and l + 1 < trie.n_levels:  # beam b*k' continues old row b*K_cur + src_beam
                rows = torch.arange(B, device=device).unsqueeze(1) * K_cur + src_beam
                state.reorder(rows.reshape(-1))
            prefix = torch.cat(
                [
                    prefix.gather(1, src_beam.unsqueeze(-1).expand(B, k, l)),
                    new_code.unsqueeze(-1),
                ],
                dim=-1,
            )
    finally:
        generator.train(was_training)

    k = node.shape[1]
    if k < K_final:  # only possible if fewer candidates than beams overall (not in practice)
        pad = K_final - k
        node = torch.cat([node, node.new_full((B, pad), -1)], dim=1)
        score = torch.cat([score, score.new_full((B, pad), neg_inf)], dim=1)
    if return_pruned_bound:
        return node[:, :K_final], score[:, :K_final], pruned_bound
    return node[:, :K_final], score[:, :K_final]


def scores_for_all_items(
    leaf_ids: torch.Tensor, log_probs: torch.Tensor, trie: SemanticIDTrie, n_items: int
) -> torch.Tensor:
    """Full-ranking score matrix from beam-search output.

    Args:
        leaf_ids, log_probs: ``[B, K]`` from :func:`constrained_beam_search` (leaf -1 ignored).
        trie: the trie used for the search.
        n_items: number of columns (RecBole's ``n_items``, padding item 0 included).
    Returns:
        FloatTensor ``[B, n_items]``: ``-inf`` everywhere except items whose ID is a returned
        leaf, which get that leaf's log-probability (items sharing an ID share the score).
        Each row has ``sum of leaf sizes over its finite beams`` finite entries, i.e. at
        least the number of finite beams (see the module docstring on ``max(topk)``).
    """
    B = leaf_ids.shape[0]
    device = log_probs.device
    n_leaves = trie.n_leaves
    leaf_scores = torch.full((B, n_leaves + 1), float("-inf"), device=device)
    ok = (leaf_ids >= 0) & torch.isfinite(log_probs)
    col = torch.where(ok, leaf_ids, torch.full_like(leaf_ids, n_leaves))  # dump column
    leaf_scores.scatter_(1, col, log_probs.float().masked_fill(~ok, float("-inf")))

    item_leaf = trie.item_leaf.to(device)
    m = min(n_items, item_leaf.shape[0])
    cols = torch.full((n_items,), n_leaves, dtype=torch.long, device=device)
    il = item_leaf[:m]
    cols[:m] = torch.where(il >= 0, il, torch.full_like(il, n_leaves))
    return leaf_scores[:, cols]
