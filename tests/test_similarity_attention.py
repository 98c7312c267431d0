"""Similarity-enhanced self-attention (BBQRec eq. 14-17)."""
import functools

import pytest
import torch

from recbole_bbq.modules.generator import MultiHeadAttention, SemanticIDGenerator
from recbole_bbq.modules.similarity_attention import (
    SimilarityAttention, _SimilarityMix, similarity_buckets)


B, T, L, K = 3, 4, 3, 10
D_MODEL, H, DH = 16, 2, 8
# the eq. 17 product works through the query items in chunks of this many elements of the
# modulated values: one query item per chunk, three (a chunk of 3 and one of 1), all four
ONE_ITEM = B * H * T * L * DH
CHUNKS = pytest.mark.parametrize("chunk_elements", [ONE_ITEM, 3 * ONE_ITEM, 1 << 20],
                                 ids=["1 item", "3+1 items", "one chunk"])


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T * L, D_MODEL, generator=g)
    item_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    buckets = torch.randint(0, K + 1, (B, T, T), generator=g)
    return x, item_mask, buckets


def pair(seed=0):
    torch.manual_seed(seed)
    plain = MultiHeadAttention(D_MODEL, H, DH)
    sim = SimilarityAttention(D_MODEL, H, DH, n_buckets=K)
    missing, unexpected = sim.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["sim_embedding.weight"] and not unexpected
    return plain, sim


def test_buckets_map_cosine_minus_one_zero_one_to_0_half_k():
    v = torch.tensor([[[1.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [5.0, 5.0]]])
    mask = torch.tensor([[True, True, True, False]])
    buckets = similarity_buckets(v, mask, 100)
    assert buckets.shape == (1, 4, 4) and buckets.dtype == torch.long
    assert buckets[0, 0, 0] == 100 and buckets[0, 0, 1] == 0 and buckets[0, 0, 2] == 50
    assert buckets[0, 1, 2] == 50 and buckets[0, 1, 0] == 0
    assert (buckets[0, 3] == 0).all() and (buckets[0, :, 3] == 0).all()  # padded pairs
    assert int(similarity_buckets(v, torch.ones(1, 4, dtype=torch.bool), 100).max()) <= 100


def test_ones_embedding_is_exactly_plain_attention():
    plain, sim = pair()
    assert torch.equal(sim.sim_embedding.weight, torch.ones(K + 1, H * DH))
    x, item_mask, buckets = inputs()
    token_mask = item_mask.repeat_interleave(L, dim=1)
    expected = plain(x, x, key_mask=token_mask)
    got = sim(x, x, key_mask=token_mask, item_sim_buckets=buckets)
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("levels", [L, 1], ids=["a token per level", "a token per item"])
def test_matches_the_per_token_pair_definition(levels):
    """Efficient grouping == naive sum_j w_ij * (e_(item i, item j) (.) v_j) per head, with
    each item's L level tokens as positions (TIGER's layout) or one position per item
    (``history_tokens="item"``)."""
    plain, sim = pair()
    with torch.no_grad():
        sim.sim_embedding.weight.normal_()
    x, item_mask, buckets = inputs(1)
    x = x[:, : T * levels]
    S = T * levels
    token_mask = item_mask.repeat_interleave(levels, dim=1)
    got = sim(x, x, key_mask=token_mask, item_sim_buckets=buckets)
    assert not torch.allclose(got, plain(x, x, key_mask=token_mask), atol=1e-3)

    q, (k, v) = sim._split(sim.q_proj(x)), sim.project_kv(x)
    w = sim.attention_weights(q, k, key_mask=token_mask)  # [B, H, S, S]
    item = torch.arange(S) // levels
    e = sim.sim_embedding(buckets[:, item][:, :, item])  # [B, S, S, H*DH]
    e = e.view(B, S, S, H, DH).permute(0, 3, 1, 2, 4)  # [B, H, S, S, DH]
    naive = (w.unsqueeze(-1) * e * v.unsqueeze(2)).sum(3)  # [B, H, S, DH]
    naive = sim.o_proj(naive.transpose(1, 2).reshape(B, S, H * DH))
    assert torch.allclose(got, naive, atol=1e-5)


def generator(attention_cls=None):
    torch.manual_seed(0)
    kw = {"attention_cls": attention_cls} if attention_cls else {}
    return SemanticIDGenerator(
        [5, 6, 4], max_history=T, d_model=D_MODEL, n_heads=H, d_head=DH, d_ff=32,
        n_enc_layers=2, n_dec_layers=1, dropout=0.0, **kw
    ).eval()


def test_generator_starts_as_plain_attention():
    plain = generator()
    sim = generator(functools.partial(SimilarityAttention, n_buckets=K))
    for layer in sim.encoder.layers:  # the generator's generic init must not touch E_sim
        assert torch.equal(layer.self_attn.sim_embedding.weight, torch.ones(K + 1, H * DH))
    sim.load_state_dict(plain.state_dict(), strict=False)
    g = torch.Generator().manual_seed(3)
    codes = torch.stack([torch.randint(0, n, (B, T), generator=g) for n in (5, 6, 4)], -1)
    _, item_mask, buckets = inputs()
    target = torch.tensor([[1, 2, 3], [0, 0, 0], [4, 5, 1]])
    expected = plain.target_log_prob(codes, item_mask, target)
    got = sim.target_log_prob(codes, item_mask, target, item_sim_buckets=buckets)
    assert torch.allclose(got, expected, atol=1e-5)


def test_padding_never_changes_outputs():
    sim = generator(functools.partial(SimilarityAttention, n_buckets=K))
    with torch.no_grad():
        for layer in sim.encoder.layers:
            layer.self_attn.sim_embedding.weight.uniform_(0.0, 2.0)
    g = torch.Generator().manual_seed(4)
    codes = torch.stack([torch.randint(0, n, (B, T), generator=g) for n in (5, 6, 4)], -1)
    _, item_mask, buckets = inputs(2)
    target = torch.tensor([[1, 2, 3], [0, 0, 0], [4, 5, 1]])
    memory, _ = sim.encode(codes, item_mask, item_sim_buckets=buckets)
    logp = sim.target_log_prob(codes, item_mask, target, item_sim_buckets=buckets)

    pad = ~item_mask
    pair_pad = pad[:, :, None] | pad[:, None, :]
    codes2 = codes.clone()
    codes2[pad] = torch.tensor([4, 5, 3])
    buckets2 = torch.where(pair_pad, (buckets + 3) % (K + 1), buckets)
    assert not torch.equal(buckets2, buckets)
    memory2, _ = sim.encode(codes2, item_mask, item_sim_buckets=buckets2)
    assert torch.allclose(memory, memory2, atol=1e-6)
    logp2 = sim.target_log_prob(codes2, item_mask, target, item_sim_buckets=buckets2)
    assert torch.allclose(logp, logp2, atol=1e-6)
    # ... while the buckets of real pairs do matter
    buckets3 = torch.where(pair_pad, buckets, (buckets + 3) % (K + 1))
    memory3, _ = sim.encode(codes, item_mask, item_sim_buckets=buckets3)
    assert not torch.allclose(memory, memory3, atol=1e-4)


def test_bfloat16_autocast_modulates_in_bfloat16_and_trains_e_sim(monkeypatch):
    """Under CPU autocast (enable_amp) the modulated values stay in the values' bfloat16
    instead of being promoted to E_sim's float32; the output stays near float32's and
    E_sim still gets a float32 gradient."""
    _, sim = pair()
    with torch.no_grad():
        sim.sim_embedding.weight.normal_(1.0, 0.3)
    x, item_mask, buckets = inputs(2)
    token_mask = item_mask.repeat_interleave(L, dim=1)
    full = sim(x, x, key_mask=token_mask, item_sim_buckets=buckets)
    seen = []
    real_matmul = torch.matmul

    def spy(a, b):
        seen.append((tuple(a.shape), a.dtype, b.dtype))
        return real_matmul(a, b)

    monkeypatch.setattr(torch, "matmul", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = sim(x, x, key_mask=token_mask, item_sim_buckets=buckets)
    monkeypatch.undo()
    # the weights @ modulated values product: its left operand is 5-D, [B, H, T, L, S]
    mixes = [s for s in seen if len(s[0]) == 5]
    assert mixes and all(a == b == torch.bfloat16 for _, a, b in mixes)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), full, atol=0.05)
    low.float().pow(2).sum().backward()
    grad = sim.sim_embedding.weight.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().sum() > 0


def test_similarity_buckets_ignore_autocast():
    """The buckets are computed in float32 under autocast too, so a model trained with
    enable_amp looks up the same E_sim rows as its (float32) evaluation."""
    torch.manual_seed(0)
    v = torch.randn(64, 20, 32)
    mask = torch.ones(64, 20, dtype=torch.bool)
    plain = similarity_buckets(v, mask, 100)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_amp = similarity_buckets(v, mask, 100)
    assert torch.equal(plain, under_amp)


@CHUNKS
@pytest.mark.parametrize("trained", ["all", "values only", "E_sim only"])
def test_gradients_equal_those_of_the_plain_autograd_product(monkeypatch, chunk_elements, trained):
    """The combine step recomputes the modulated values in backward instead of saving them,
    a few query items at a time: its gradients for the weights, the values and E_sim must be
    those autograd gives for the product written out (float64, random E_sim, some weights
    exactly zero), whatever the chunk size and whichever inputs need a gradient."""
    monkeypatch.setattr(_SimilarityMix, "chunk_elements", chunk_elements)
    _, sim = pair()
    sim = sim.double()
    with torch.no_grad():
        sim.sim_embedding.weight.normal_(1.0, 0.3)
    g = torch.Generator().manual_seed(5)
    s = T * L
    w = torch.softmax(torch.randn(B, H, s, s, generator=g, dtype=torch.float64), -1)
    w = (w * (torch.rand(B, 1, 1, s, generator=g) > 0.3)).requires_grad_(trained == "all")
    v = torch.randn(B, H, s, DH, generator=g, dtype=torch.float64,
                    requires_grad=trained in ("all", "values only"))
    sim.sim_embedding.weight.requires_grad_(trained in ("all", "E_sim only"))
    _, _, buckets = inputs(3)
    upstream = torch.randn(B, H, s, DH, generator=g, dtype=torch.float64)

    out = sim.combine(w, v, item_sim_buckets=buckets)
    out.backward(upstream)
    got = [out.detach(), w.grad, v.grad, sim.sim_embedding.weight.grad]
    assert [x is None for x in got[1:]] == [trained != "all", trained == "E_sim only",
                                            trained == "values only"]

    for p in (w, v, sim.sim_embedding.weight):
        p.grad = None
    e = sim.sim_embedding(buckets).view(B, T, T, H, DH).permute(0, 3, 1, 2, 4)
    modulated = (e.unsqueeze(4) * v.view(B, H, 1, T, L, DH)).reshape(B, H, T, s, DH)
    by_hand = torch.matmul(w.reshape(B, H, T, L, s), modulated).reshape(B, H, s, DH)
    by_hand.backward(upstream)
    expected = [by_hand.detach(), w.grad, v.grad, sim.sim_embedding.weight.grad]
    for a, b in zip(got, expected):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-12)


@CHUNKS
@pytest.mark.parametrize("frozen_values", [True, False], ids=["frozen values", "values trained"])
def test_gradients_under_bfloat16_autocast(monkeypatch, chunk_elements, frozen_values):
    """The same comparison in CPU bfloat16 autocast (float32 weights, bfloat16 values, as a
    run with enable_amp may hand them over), with and without a gradient for the values."""
    monkeypatch.setattr(_SimilarityMix, "chunk_elements", chunk_elements)
    _, sim = pair()
    with torch.no_grad():
        sim.sim_embedding.weight.normal_(1.0, 0.3)
    g = torch.Generator().manual_seed(6)
    s = T * L
    w = torch.softmax(torch.randn(B, H, s, s, generator=g), -1).requires_grad_()
    v = torch.randn(B, H, s, DH, generator=g).to(torch.bfloat16).requires_grad_(not frozen_values)
    _, _, buckets = inputs(4)
    upstream = torch.randn(B, H, s, DH, generator=g).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sim.combine(w, v, item_sim_buckets=buckets)
    assert out.dtype == torch.bfloat16
    out.backward(upstream)
    got = [out.detach().float(), w.grad.clone(), sim.sim_embedding.weight.grad.clone()]
    assert w.grad.dtype == torch.float32
    if frozen_values:
        assert v.grad is None
    else:
        assert v.grad.dtype == torch.bfloat16
        got.append(v.grad.float())

    w.grad, sim.sim_embedding.weight.grad, v.grad = None, None, None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        e = sim.sim_embedding(buckets).view(B, T, T, H, DH).permute(0, 3, 1, 2, 4).to(v.dtype)
        modulated = (e.unsqueeze(4) * v.view(B, H, 1, T, L, DH)).reshape(B, H, T, s, DH)
        by_hand = torch.matmul(w.reshape(B, H, T, L, s), modulated).reshape(B, H, s, DH)
    by_hand.backward(upstream)
    expected = [by_hand.detach().float(), w.grad, sim.sim_embedding.weight.grad]
    if not frozen_values:
        expected.append(v.grad.float())
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, rtol=2e-2, atol=2e-2)
