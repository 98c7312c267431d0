"""Unit tests for recbole_bbq.modules.beam_search (pure torch, CPU, a few seconds)."""

import numpy as np
import pytest
import torch

from recbole_bbq.modules.beam_search import (
    SemanticIDTrie,
    constrained_beam_search,
    scores_for_all_items,
)
from recbole_bbq.modules.generator import SemanticIDGenerator

LEVELS = [4, 3, 3]
N_ITEMS = 30  # item 0 is padding (all -1)
T = 4




def toy_codes(seed=0):
    """30 items, item 0 padding, a few deliberately shared IDs."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.stack([torch.randint(0, n, (N_ITEMS,), generator=g) for n in LEVELS], -1)
    codes[0] = -1
    codes[5] = codes[4]  # shared IDs
    codes[17] = codes[4]
    codes[9] = codes[8]
    return codes


def toy_model(seed=0, **kw):
    torch.manual_seed(seed)
    # larger init so the random model has well separated (non-tied) scores
    sizes = dict(d_model=32, n_heads=2, d_head=16, d_ff=64, n_enc_layers=2, n_dec_layers=2,
                 dropout=0.1, init_std=0.3)
    return SemanticIDGenerator(LEVELS, max_history=T, **{**sizes, **kw})


def toy_histories(codes, B=5, seed=0):
    g = torch.Generator().manual_seed(seed + 100)
    items = torch.randint(1, N_ITEMS, (B, T), generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    items = items * mask
    return codes[items], mask  # padded slots carry item 0's -1 codes


def brute_force(model, hist, mask, trie):
    """log p(ID | history) for every leaf by teacher forcing: [B, n_leaves]."""
    model.eval()
    B, n_leaves = hist.shape[0], trie.n_leaves
    with torch.no_grad():
        lp = model.target_log_prob(
            hist.repeat_interleave(n_leaves, 0),
            mask.repeat_interleave(n_leaves, 0),
            trie.leaf_codes.repeat(B, 1),
        )
    return lp.view(B, n_leaves)


# ---------------------------------------------------------------------------- trie
def test_trie_structure_matches_python_reference():
    codes = toy_codes()
    trie = SemanticIDTrie(codes)
    assert trie.n_levels == 3
    valid = [tuple(r) for r in codes.tolist() if r[0] >= 0]
    ids = sorted(set(valid))
    assert trie.n_leaves == len(ids)
    assert [tuple(r) for r in trie.leaf_codes.tolist()] == ids
    # walk the trie from the root and rebuild every ID
    rebuilt = []

    def walk(depth, node, prefix):
        if depth == trie.n_levels:
            rebuilt.append((tuple(prefix), node))
            return
        cc = trie.children_codes[depth][node].tolist()
        ci = trie.children_ids[depth][node].tolist()
        real = [(c, i) for c, i in zip(cc, ci) if c >= 0]
        assert [c for c, _ in real] == sorted({p[depth] for p in ids if p[:depth] == tuple(prefix)})
        assert all(i >= 0 for _, i in real) and all(i == -1 for c, i in zip(cc, ci) if c < 0)
        for c, i in real:
            walk(depth + 1, i, prefix + [c])

    walk(0, 0, [])
    assert [p for p, _ in rebuilt] == ids
    for p, leaf in rebuilt:
        items = trie.items_of_leaf(leaf).tolist()
        assert items == [r for r, row in enumerate(codes.tolist()) if tuple(row) == p]
    assert trie.item_leaf[0] == -1
    assert {4, 5, 17} <= set(trie.items_of_leaf(trie.item_leaf[4]).tolist())


def test_trie_rejects_partial_padding_and_oversized_codes():
    codes = toy_codes()
    codes[3, 1] = -1
    with pytest.raises(ValueError):
        SemanticIDTrie(codes)
    with pytest.raises(ValueError):
        SemanticIDTrie(toy_codes(), level_sizes=[2, 3, 3])


def test_trie_build_12k_items_partitions_items():
    rng = np.random.default_rng(0)
    n, sizes = 12000, [3000, 256, 256, 8]
    codes = np.stack([rng.integers(0, s, n) for s in sizes], 1)
    codes[:200, :3] = codes[200:400, :3]  # shared prefixes
    codes[:50] = codes[50:100]  # shared full IDs
    codes[0] = -1
    trie = SemanticIDTrie(torch.from_numpy(codes))
    ptr, item = trie.leaf_items
    assert ptr[0] == 0 and ptr[-1] == n - 1 and (ptr[1:] > ptr[:-1]).all()
    assert torch.equal(torch.sort(item).values, torch.arange(1, n))  # every item exactly once
    leaf_of_pos = torch.repeat_interleave(torch.arange(trie.n_leaves), ptr[1:] - ptr[:-1])
    assert torch.equal(trie.item_leaf[item], leaf_of_pos)
    assert torch.equal(trie.leaf_codes[leaf_of_pos], torch.from_numpy(codes)[item])
    assert trie.n_leaves == len({tuple(r) for r in codes[1:].tolist()})
    assert trie.children_codes[0].shape[0] == 1  # root
    assert trie.children_ids[3].max() == trie.n_leaves - 1


# ---------------------------------------------------------------------------- search
@pytest.mark.parametrize("seed,use_cache,decoder", [
    (0, True, {}), (1, True, {}), (0, False, {}),
    (0, True, {"decoder_start": "last_item", "start_every_level": True}),
    (1, True, {"decoder_start": "last_item", "start_every_level": True, "n_dec_layers": 0}),
    (2, True, {"decoder_start": "last_item", "history_tokens": "item"}),
    (2, False, {"history_tokens": "item"}),
    (3, True, {"decoder_start": "last_item", "history_tokens": "item", "tie_embeddings": True,
               "first_level_embeddings": "items"}),
])
def test_full_beam_equals_brute_force(seed, use_cache, decoder):
    codes = toy_codes(seed)
    trie = SemanticIDTrie(codes)
    if decoder.get("first_level_embeddings") == "items":
        decoder = {**decoder, "item_codes": codes[1:]}
    model = toy_model(seed, **decoder)
    hist, mask = toy_histories(codes, seed=seed)
    model.train()  # the search must switch to eval itself and restore the mode
    leaf, lp = constrained_beam_search(
        model, hist, mask, trie, beam_size=trie.n_leaves + 7, use_cache=use_cache
    )
    assert model.training
    assert leaf.shape == lp.shape == (hist.shape[0], trie.n_leaves)
    bf = brute_force(model, hist, mask, trie)
    bf_sorted, bf_order = bf.sort(dim=1, descending=True)
    torch.testing.assert_close(lp, bf_sorted, rtol=0, atol=1e-5)
    assert torch.equal(leaf, bf_order)  # same ranking (random model: no ties)
    # not renormalised: probabilities of all valid IDs sum to < 1 (mass on invalid IDs)
    assert (lp.exp().sum(1) < 0.999).all()


def children_renormalised_brute_force(model, hist, mask, trie):
    """Per leaf, the sum over levels of the log-softmax over the node's valid children only."""
    model.eval()
    out = torch.zeros(hist.shape[0], trie.n_leaves)
    with torch.no_grad():
        memory, mm = model.encode(hist, mask)
        for leaf in range(trie.n_leaves):
            codes = trie.leaf_codes[leaf]
            node = torch.zeros(hist.shape[0], dtype=torch.long)
            for l in range(trie.n_levels):
                prefix = codes[:l].expand(hist.shape[0], l)
                logits = model.decode_logits(memory, mm, prefix)
                cc, ci = trie.children_codes[l][node], trie.children_ids[l][node]
                s = logits.gather(1, cc.clamp(min=0)).masked_fill(cc < 0, float("-inf"))
                j = (cc == codes[l]).float().argmax(1, keepdim=True)
                out[:, leaf] += (s.log_softmax(1).gather(1, j)).squeeze(1)
                node = ci.gather(1, j).squeeze(1)
    return out


@pytest.mark.parametrize("use_cache", [True, False])
def test_children_level_scores_renormalise_over_valid_ids(use_cache):
    """level_scores='children' ranks by the product of per-level distributions restricted to
    the node's children: the valid IDs' probabilities then sum to one, a one-child level adds
    nothing, and every score matches the teacher-forced computation."""
    codes = toy_codes(4)
    trie = SemanticIDTrie(codes)
    model = toy_model(4)
    hist, mask = toy_histories(codes, B=4, seed=4)
    leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=trie.n_leaves,
                                       use_cache=use_cache, level_scores="children")
    torch.testing.assert_close(lp.exp().sum(1), torch.ones(4), rtol=0, atol=1e-5)
    expected = children_renormalised_brute_force(model, hist, mask, trie)
    torch.testing.assert_close(lp, expected.gather(1, leaf), rtol=0, atol=1e-5)
    assert (lp[:, 1:] <= lp[:, :-1]).all()
    model_leaf, model_lp = constrained_beam_search(model, hist, mask, trie, beam_size=trie.n_leaves)
    assert (model_lp.exp().sum(1) < 0.999).all()  # the default is still the model's log p
    with pytest.raises(ValueError, match="level_scores"):
        constrained_beam_search(model, hist, mask, trie, beam_size=3, level_scores="item")
    # a dropped prefix still bounds every ID below it
    leaf3, lp3, bound = constrained_beam_search(model, hist, mask, trie, beam_size=3,
                                                level_scores="children", return_pruned_bound=True)
    unseen = torch.ones_like(expected, dtype=torch.bool).scatter_(1, leaf3, False)
    assert torch.isfinite(bound).all()
    assert (expected.masked_fill(~unseen, float("-inf")).max(1).values <= bound + 1e-5).all()


@pytest.mark.parametrize("beam", [1, 3, 10])
def test_pruned_bound_caps_every_id_the_search_did_not_return(beam):
    """The best dropped prefix's score bounds the exact log p of every ID not returned, and
    asking for it changes nothing else; a beam as wide as the trie drops nothing."""
    codes = toy_codes(3)
    trie = SemanticIDTrie(codes)
    model = toy_model(3)
    hist, mask = toy_histories(codes, B=6, seed=3)
    leaf, lp, bound = constrained_beam_search(model, hist, mask, trie, beam_size=beam,
                                              return_pruned_bound=True)
    plain_leaf, plain_lp = constrained_beam_search(model, hist, mask, trie, beam_size=beam)
    assert torch.equal(leaf, plain_leaf) and torch.equal(lp, plain_lp)
    bf = brute_force(model, hist, mask, trie)
    unseen = torch.ones_like(bf, dtype=torch.bool).scatter_(1, leaf, False)
    best_unseen = bf.masked_fill(~unseen, float("-inf")).max(1).values
    assert torch.isfinite(bound).all()
    assert (best_unseen <= bound + 1e-5).all()
    _, _, none_dropped = constrained_beam_search(model, hist, mask, trie, beam_size=trie.n_leaves,
                                                 return_pruned_bound=True)
    assert torch.isinf(none_dropped).all() and (none_dropped < 0).all()


@pytest.mark.parametrize("beam,use_cache", [(1, True), (3, True), (10, True), (3, False)])
def test_small_beam_scores_are_exact_and_sorted(beam, use_cache):
    codes = toy_codes(2)
    trie = SemanticIDTrie(codes)
    model = toy_model(2)
    hist, mask = toy_histories(codes, B=6, seed=2)
    leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=beam, use_cache=use_cache)
    assert leaf.shape == (6, beam)
    assert torch.isfinite(lp).all() and (leaf >= 0).all()
    assert (lp[:, 1:] <= lp[:, :-1]).all()
    bf = brute_force(model, hist, mask, trie)
    torch.testing.assert_close(lp, bf.gather(1, leaf), rtol=0, atol=1e-5)
    for row in leaf.tolist():
        assert len(set(row)) == len(row)  # no duplicate IDs
    # beam 1 is greedy decoding restricted to the trie
    if beam == 1:
        model.eval()
        with torch.no_grad():
            memory, mm = model.encode(hist, mask)
            node = torch.zeros(6, dtype=torch.long)
            prefix = torch.zeros(6, 0, dtype=torch.long)
            for l in range(3):
                logits = model.decode_logits(memory, mm, prefix)
                cc, ci = trie.children_codes[l][node], trie.children_ids[l][node]
                s = logits.gather(1, cc.clamp(min=0)).masked_fill(cc < 0, float("-inf"))
                j = s.argmax(1, keepdim=True)
                prefix = torch.cat([prefix, cc.gather(1, j)], 1)
                node = ci.gather(1, j).squeeze(1)
        assert torch.equal(leaf[:, 0], node)


def test_only_valid_ids_and_item0_never_returned():
    codes = toy_codes(3)
    trie = SemanticIDTrie(codes)
    model = toy_model(3)
    hist, mask = toy_histories(codes, B=8, seed=3)
    for beam in (5, 100):
        leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=beam)
        sizes = trie.leaf_sizes()
        assert (leaf >= 0).all() and (leaf < trie.n_leaves).all()
        assert (sizes[leaf] >= 1).all()
        valid_ids = {tuple(r) for r in codes[1:].tolist()}
        for row in leaf.tolist():
            assert len(set(row)) == len(row)
            assert all(tuple(trie.leaf_codes[f].tolist()) in valid_ids for f in row)
        scores = scores_for_all_items(leaf, lp, trie, N_ITEMS)
        assert torch.isneginf(scores[:, 0]).all()


def test_scores_for_all_items_shares_scores_and_counts_finite():
    codes = toy_codes(4)
    trie = SemanticIDTrie(codes)
    model = toy_model(4)
    hist, mask = toy_histories(codes, B=7, seed=4)
    for beam in (1, 4, 10, 1000):
        leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=beam)
        K = min(beam, trie.n_leaves)
        assert leaf.shape == (7, K) and torch.isfinite(lp).sum(1).eq(K).all()
        scores = scores_for_all_items(leaf, lp, trie, N_ITEMS + 3)  # extra cols stay -inf
        assert scores.shape == (7, N_ITEMS + 3)
        assert torch.isneginf(scores[:, N_ITEMS:]).all()
        sizes = trie.leaf_sizes()
        finite = torch.isfinite(scores).sum(1)
        assert torch.equal(finite, sizes[leaf].sum(1))  # items per returned leaf
        assert (finite >= K).all()
        # every finite item score is its leaf's score; shared IDs share it
        for b in range(7):
            for f, s in zip(leaf[b].tolist(), lp[b].tolist()):
                assert torch.allclose(scores[b, trie.items_of_leaf(f)], torch.tensor(s))
        for group in ([4, 5, 17], [8, 9]):
            assert (scores[:, group] == scores[:, group[:1]]).all()
        if beam >= trie.n_leaves:
            assert torch.isfinite(scores[:, 1:N_ITEMS]).all()


def test_topk_never_picks_unscored_items():
    """With beam >= max(topk) RecBole's topk only ever sees finite (generated) items."""
    codes = toy_codes(5)
    trie = SemanticIDTrie(codes)
    model = toy_model(5)
    hist, mask = toy_histories(codes, B=6, seed=5)
    max_topk = 10
    leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=max_topk)
    scores = scores_for_all_items(leaf, lp, trie, N_ITEMS)
    assert (torch.isfinite(scores).sum(1) >= max_topk).all()
    top_scores, top_items = scores.topk(max_topk, dim=1)
    assert torch.isfinite(top_scores).all()
    generated = [set(trie.leaf_item[trie.leaf_ptr[f]:trie.leaf_ptr[f + 1]].tolist())
                 for f in leaf.view(-1).tolist()]
    for b, row in enumerate(top_items.tolist()):
        allowed = set().union(*generated[b * max_topk:(b + 1) * max_topk])
        assert set(row) <= allowed


def test_unfilled_beams_are_minus_inf_never_fake_items():
    # 4 distinct IDs with uneven branching: at level 1 the (beam x children) table has
    # -1-padded slots that top-k must not turn into beams; beams beyond 4 do not exist.
    codes = torch.tensor(
        [[-1, -1, -1], [0, 0, 0], [0, 1, 0], [0, 2, 1], [0, 2, 1], [1, 0, 2]]
    )
    trie = SemanticIDTrie(codes)
    assert trie.max_children == [2, 3, 1]
    model = toy_model(6)
    hist = codes[torch.tensor([[1, 3, 0, 0], [5, 0, 0, 0]])]
    mask = torch.tensor([[True, True, False, False], [True, False, False, False]])
    leaf, lp = constrained_beam_search(model, hist, mask, trie, beam_size=10)
    assert leaf.shape == (2, 4) and torch.isfinite(lp).all()
    assert sorted(leaf[0].tolist()) == [0, 1, 2, 3] and sorted(leaf[1].tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(lp, brute_force(model, hist, mask, trie).gather(1, leaf))
    scores = scores_for_all_items(leaf, lp, trie, 6)
    assert torch.isneginf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()
    assert (scores[:, 3] == scores[:, 4]).all()
    # hand-made partial result: -1 leaves with -inf never produce finite items
    part = scores_for_all_items(
        torch.tensor([[3, -1]]), torch.tensor([[-0.5, float("-inf")]]), trie, 6
    )
    assert torch.isfinite(part).sum() == 1 and part[0, 5] == -0.5
    empty = SemanticIDTrie(torch.full((3, 3), -1))
    leaf, lp = constrained_beam_search(model, hist, mask, empty, beam_size=4)
    assert leaf.shape == (2, 0)
    assert torch.isneginf(scores_for_all_items(leaf, lp, empty, 3)).all()


def test_rejects_mismatched_trie():
    model = toy_model(0)
    hist, mask = toy_histories(toy_codes(), B=2)
    with pytest.raises(ValueError):
        constrained_beam_search(
            model, hist, mask, SemanticIDTrie(torch.tensor([[0, 0, 5]])), beam_size=3
        )
    with pytest.raises(ValueError):
        constrained_beam_search(
            model, hist, mask, SemanticIDTrie(torch.tensor([[0, 0]])), beam_size=3
        )
