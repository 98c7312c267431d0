"""Unit tests for recbole_bbq.modules.generator (pure torch, CPU, a few seconds)."""
import pytest
import torch

from recbole_bbq.modules.generator import MultiHeadAttention, SemanticIDGenerator

LEVELS = [7, 5, 6]
T = 5




def tiny(**kw):
    cfg = dict(
        d_model=32, n_heads=2, d_head=16, d_ff=64, n_enc_layers=1, n_dec_layers=1, dropout=0.0
    )
    cfg.update(kw)
    return SemanticIDGenerator(LEVELS, max_history=T + 2, **cfg)


def logits_after_history_change(m, codes, mask, target):
    """The teacher-forced logits once the first user's oldest history token is changed."""
    changed = codes.clone()
    changed[0, 0, 0] = (codes[0, 0, 0] + 1) % LEVELS[0]
    return m(changed, mask, target)


def batch(B=6, seed=0, right_pad=True):
    g = torch.Generator().manual_seed(seed)
    codes = torch.stack(
        [torch.randint(0, n, (B, T), generator=g) for n in LEVELS], dim=-1
    )  # [B, T, L]
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T  # one full row
    ar = torch.arange(T)
    mask = ar[None] < lengths[:, None] if right_pad else ar[None] >= (T - lengths)[:, None]
    target = torch.stack([torch.randint(0, n, (B,), generator=g) for n in LEVELS], dim=-1)
    return codes, mask, target


def test_default_size_is_tiger():
    m = SemanticIDGenerator([256, 256, 256, 4], max_history=20)
    assert len(m.encoder.layers) == 4 and len(m.decoder.layers) == 4
    att = m.encoder.layers[0].self_attn
    assert (att.n_heads, att.d_head, m.d_model) == (6, 64, 128)
    assert att.q_proj.out_features == 384 and att.o_proj.out_features == 128
    assert m.encoder.layers[0].ffn.wi.out_features == 1024


def test_output_shapes():
    torch.manual_seed(0)
    m = tiny()
    codes, mask, target = batch()
    logits = m(codes, mask, target)
    assert len(logits) == len(LEVELS)
    for l, lg in enumerate(logits):
        assert lg.shape == (codes.shape[0], LEVELS[l])
    memory, mmask = m.encode(codes, mask)
    assert memory.shape == (codes.shape[0], T * len(LEVELS), 32)
    assert mmask.shape == (codes.shape[0], T * len(LEVELS))
    assert torch.equal(mmask, mask.repeat_interleave(len(LEVELS), dim=1))
    for l in range(len(LEVELS)):
        assert m.decode_logits(memory, mmask, target[:, :l]).shape == (codes.shape[0], LEVELS[l])
    # several prefixes (beams) per memory row
    assert m.decode_logits(memory, mmask, target[:, :2].repeat_interleave(3, 0)).shape == (
        3 * codes.shape[0],
        LEVELS[2],
    )
    loss = m.loss(codes, mask, target)
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("kw", [{}, {"activation": "gelu", "norm": "layer"}, {"init": "t5"},
                                {"tie_embeddings": True}, {"tie_embeddings": True, "init": "t5"}])
def test_overfits_tiny_batch(kw):
    torch.manual_seed(0)
    m = tiny(**kw)
    codes, mask, target = batch(B=8, seed=1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss = m.loss(codes, mask, target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    final = m.loss(codes, mask, target).item()
    assert first > 1.0
    assert final < 0.05, (first, final)
    # argmax reproduces every target token
    preds = torch.stack([lg.argmax(-1) for lg in m(codes, mask, target)], dim=-1)
    assert torch.equal(preds, target)


def test_t5_init_scales_embeddings_to_one_and_weights_by_fan_in():
    torch.manual_seed(0)
    m = SemanticIDGenerator([256, 256, 256], max_history=20, d_model=64, n_heads=4, d_head=16,
                            d_ff=256, n_enc_layers=2, n_dec_layers=2, init="t5")
    assert m.embedding_std == 1.0
    assert abs(m.token_emb[0].weight.std().item() - 1.0) < 0.05
    assert abs(m.position_emb.weight.std().item() - 1.0) < 0.2
    ffn = m.encoder.layers[0].ffn
    assert abs(ffn.wi.weight.std().item() - 64 ** -0.5) < 0.01
    assert abs(ffn.wo.weight.std().item() - 256 ** -0.5) < 0.005
    att = m.decoder.layers[1].cross_attn
    assert abs(att.q_proj.weight.std().item() - (64 * 16) ** -0.5) < 0.005
    assert abs(att.k_proj.weight.std().item() - 64 ** -0.5) < 0.01
    assert abs(m.heads[0].weight.std().item() - 64 ** -0.5) < 0.01
    default = SemanticIDGenerator([256, 256, 256], max_history=20, d_model=64, n_heads=4,
                                  d_head=16, d_ff=256, n_enc_layers=2, n_dec_layers=2)
    assert default.embedding_std == 0.02
    assert abs(default.token_emb[0].weight.std().item() - 0.02) < 0.002
    assert abs(default.encoder.layers[0].ffn.wi.weight.std().item() - 0.02) < 0.002
    with pytest.raises(ValueError, match="init"):
        SemanticIDGenerator([4], max_history=2, init="xavier")


@pytest.mark.parametrize("start, history_tokens", [("bos", "levels"), ("last_item", "levels"),
                                                   ("bos", "item"), ("last_item", "item")])
def test_padding_invariance_and_side(start, history_tokens):
    torch.manual_seed(0)
    m = tiny(n_enc_layers=2, n_dec_layers=2, decoder_start=start, history_tokens=history_tokens,
             input_norm=history_tokens == "item").eval()
    codes, mask, target = batch(seed=2)
    ref = m(codes, mask, target)
    noisy = codes.clone()
    junk = torch.stack([torch.randint(0, n, codes.shape[:2]) for n in LEVELS], dim=-1)
    noisy[~mask] = junk[~mask]
    out = m(noisy, mask, target)
    for a, b in zip(ref, out):
        assert torch.equal(a, b)
    # -1 codes at padded slots are accepted too
    neg = codes.clone()
    neg[~mask] = -1
    for a, b in zip(ref, m(neg, mask, target)):
        assert torch.equal(a, b)
    # left-padding the same histories gives the same logits (positions counted over real items)
    lengths = mask.sum(1)
    left_codes = torch.full_like(codes, -1)
    left_mask = torch.zeros_like(mask)
    for i, n in enumerate(lengths.tolist()):
        left_codes[i, T - n :] = codes[i, :n]
        left_mask[i, T - n :] = True
    for a, b in zip(ref, m(left_codes, left_mask, target)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # extra padded slots (more masked keys) change nothing: padding is really masked
    extra_codes = torch.cat([codes, junk[:, :2]], dim=1)
    extra_mask = torch.cat([mask, torch.zeros_like(mask[:, :2])], dim=1)
    for a, b in zip(ref, m(extra_codes, extra_mask, target)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # sanity: a real history code does matter
    assert not torch.allclose(logits_after_history_change(m, codes, mask, target)[0][0], ref[0][0])


@pytest.mark.parametrize("right_pad", [True, False])
def test_last_item_start_reads_the_newest_history_item(right_pad):
    torch.manual_seed(0)
    m = tiny(decoder_start="last_item").eval()
    codes, mask, target = batch(seed=5, right_pad=right_pad)
    mask[1] = False  # a row without history starts from BOS alone
    memory, mmask = m.encode(codes, mask)
    start = m.start_input(memory, mmask)
    L = len(LEVELS)
    for b in range(codes.shape[0]):
        real = mask[b].nonzero().flatten()
        expected = m.bos_emb.clone()
        if real.numel():
            newest = int(real.max())
            expected = expected + memory[b, newest * L:(newest + 1) * L].mean(0)
        torch.testing.assert_close(start[b], expected)
    # the decoder reads it: the same weights started from BOS alone give other logits, and
    # the step-by-step decoding (beam search) starts from it too
    logits = m(codes, mask, target)
    torch.testing.assert_close(m.decode_step(m.start_decoding(memory, mmask)), logits[0],
                               rtol=1e-5, atol=1e-5)
    m.decoder_start = "bos"
    assert not torch.allclose(m(codes, mask, target)[0], logits[0])
    # the BOS start is the same for every user
    bos = tiny(decoder_start="bos")
    assert torch.equal(bos.start_input(memory, mmask), bos.bos_emb.expand(codes.shape[0], -1))
    with pytest.raises(ValueError, match="decoder_start"):
        tiny(decoder_start="first_item")


def test_no_decoder_layers_scores_from_the_newest_item():
    """``n_dec_layers=0``: SASRec's readout, the first level scored from the start alone."""
    torch.manual_seed(0)
    m = tiny(n_dec_layers=0, decoder_start="last_item").eval()
    codes, mask, target = batch(seed=7)
    memory, mmask = m.encode(codes, mask)
    logits = m(codes, mask, target)
    start = m.start_input(memory, mmask) + m.dec_position_emb.weight[0]
    torch.testing.assert_close(logits[0], m.level_logits(0, m.decoder.final_norm(start)))
    torch.testing.assert_close(m.decode_step(m.start_decoding(memory, mmask)), logits[0],
                               rtol=1e-5, atol=1e-5)
    # any history item reaches the start (bidirectional encoder)
    moved = logits_after_history_change(m, codes, mask, target)
    assert not torch.allclose(moved[0][0], logits[0][0])
    # later levels read the previous level's token alone, not the history
    for l in range(1, len(LEVELS)):
        prev = m.token_emb[l - 1](target[:, l - 1]) + m.level_emb.weight[l - 1]
        expected = m.level_logits(l, m.decoder.final_norm(prev + m.dec_position_emb.weight[l]))
        torch.testing.assert_close(logits[l], expected)
        torch.testing.assert_close(moved[l], logits[l])
    state = m.start_decoding(memory, mmask)
    m.decode_step(state)
    for l in range(1, len(LEVELS)):  # the beam search's path, step by step
        torch.testing.assert_close(m.decode_step(state, target[:, l - 1]), logits[l],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="n_dec_layers=0 needs decoder_start='last_item'"):
        tiny(n_dec_layers=0, decoder_start="bos")


@pytest.mark.parametrize("n_dec_layers", [0, 2])
def test_start_every_level_puts_the_history_into_every_levels_input(n_dec_layers):
    """``start_every_level=True``: every decoder position reads start + its token, so without
    decoder layers level ``l > 0`` is scored from the start plus the level ``l-1`` token
    (no longer from the token alone), and the beam search's step-by-step path agrees."""
    torch.manual_seed(0)
    m = tiny(n_dec_layers=n_dec_layers, decoder_start="last_item", start_every_level=True).eval()
    codes, mask, target = batch(seed=9)
    memory, mmask = m.encode(codes, mask)
    logits = m(codes, mask, target)
    start = m.start_input(memory, mmask)
    if n_dec_layers == 0:
        for l in range(1, len(LEVELS)):
            prev = m.token_emb[l - 1](target[:, l - 1]) + m.level_emb.weight[l - 1]
            h = m.decoder.final_norm(start + prev + m.dec_position_emb.weight[l])
            torch.testing.assert_close(logits[l], m.level_logits(l, h))
    # the first level is untouched by the key: the same weights without it give the same
    # level-0 logits and other later ones
    m.start_every_level = False
    without = m(codes, mask, target)
    m.start_every_level = True
    torch.testing.assert_close(without[0], logits[0])
    for l in range(1, len(LEVELS)):
        assert not torch.allclose(without[l], logits[l])
    # every level moves with the history
    moved = logits_after_history_change(m, codes, mask, target)
    for l in range(len(LEVELS)):
        assert not torch.allclose(moved[l][0], logits[l][0])
    # step by step, with three beams per user (rows grouped per memory row), as beam search
    state = m.start_decoding(memory, mmask)
    torch.testing.assert_close(m.decode_step(state), logits[0], rtol=1e-5, atol=1e-5)
    beams = 3
    state.reorder(torch.arange(codes.shape[0]).repeat_interleave(beams))
    for l in range(1, len(LEVELS)):
        step = m.decode_step(state, target[:, l - 1].repeat_interleave(beams))
        torch.testing.assert_close(step, logits[l].repeat_interleave(beams, dim=0),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="start_every_level needs decoder_start='last_item'"):
        tiny(decoder_start="bos", start_every_level=True)


@pytest.mark.parametrize("start", ["bos", "last_item"])
def test_history_tokens_item_encodes_one_position_per_item(start):
    """``history_tokens="item"``: one encoder position per history item, the sum of its level
    tokens' (token + level) embeddings plus the item's position, with the same weights as
    ``"levels"``; padded items stay masked, the last-item start reads the newest item's one
    state, and the beam search's step path still matches teacher forcing."""
    torch.manual_seed(0)
    m = tiny(n_dec_layers=1, decoder_start=start, history_tokens="item", input_norm=True).eval()
    codes, mask, target = batch(seed=10)
    memory, mmask = m.encode(codes, mask)
    assert memory.shape == (codes.shape[0], codes.shape[1], 32) and torch.equal(mmask, mask)
    x = sum(m.token_emb[l](codes[..., l] * mask) + m.level_emb.weight[l] for l in range(len(LEVELS)))
    x = m.input_norm(x + m.position_emb(m.history_positions(mask)))
    torch.testing.assert_close(memory, m.encoder(x, mask))
    if start == "last_item":
        newest = mask.long().cumsum(1).argmax(1)
        expected = m.bos_emb + memory[torch.arange(len(mask)), newest] * mask.any(1, keepdim=True)
        torch.testing.assert_close(m.start_input(memory, mmask), expected)
    # the same weights read per level give other logits
    logits = m(codes, mask, target)
    m.history_tokens = "levels"
    per_level = m(codes, mask, target)
    m.history_tokens = "item"
    assert not torch.allclose(per_level[0], logits[0])
    moved = logits_after_history_change(m, codes, mask, target)
    assert not torch.allclose(moved[0][0], logits[0][0])
    state = m.start_decoding(memory, mmask)
    torch.testing.assert_close(m.decode_step(state), logits[0], rtol=1e-5, atol=1e-5)
    for l in range(1, len(LEVELS)):
        torch.testing.assert_close(m.decode_step(state, target[:, l - 1]), logits[l],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="history_tokens must be one of"):
        tiny(history_tokens="items")


def test_first_level_from_the_start_later_levels_through_the_decoder():
    """``first_level_readout="start"``: level 0 is SASRec's readout of the start (as with no
    decoder layers); the later levels still read the history through the decoder layers,
    whose first key and value is the start."""
    torch.manual_seed(0)
    m = tiny(n_dec_layers=2, decoder_start="last_item", first_level_readout="start").eval()
    codes, mask, target = batch(seed=8)
    memory, mmask = m.encode(codes, mask)
    logits = m(codes, mask, target)
    start = m.start_input(memory, mmask) + m.dec_position_emb.weight[0]
    torch.testing.assert_close(logits[0], m.level_logits(0, m.decoder.final_norm(start)))
    # the decoder layers' output at position 0 differs, so the readout is really switched
    m.first_level_readout = "decoder"
    assert not torch.allclose(m(codes, mask, target)[0], logits[0])
    for l in range(1, len(LEVELS)):  # the later levels are the decoder's either way
        torch.testing.assert_close(m(codes, mask, target)[l], logits[l])
    m.first_level_readout = "start"
    # every level moves with the history (the later ones at least through the start, which
    # the decoder layers read as their first position)
    moved = logits_after_history_change(m, codes, mask, target)
    for l in range(len(LEVELS)):
        assert not torch.allclose(moved[l][0], logits[l][0])
    # the beam search's step-by-step path gives the teacher-forced logits
    state = m.start_decoding(memory, mmask)
    torch.testing.assert_close(m.decode_step(state), logits[0], rtol=1e-5, atol=1e-5)
    for l in range(1, len(LEVELS)):
        torch.testing.assert_close(m.decode_step(state, target[:, l - 1]), logits[l],
                                   rtol=1e-5, atol=1e-5)
    # in training, with dropout: level 1 never passes through the decoder layers (other
    # weights, the same draws: its logits stay), the later levels do
    m = tiny(n_dec_layers=2, decoder_start="last_item", first_level_readout="start",
             dropout=0.2).train()
    torch.manual_seed(1)
    before = m(codes, mask, target)
    with torch.no_grad():
        for p in m.decoder.layers.parameters():
            p.add_(0.5)
    torch.manual_seed(1)
    after = m(codes, mask, target)
    torch.testing.assert_close(after[0], before[0])
    for l in range(1, len(LEVELS)):
        assert not torch.allclose(after[l], before[l])
    with pytest.raises(ValueError, match="first_level_readout='start' needs decoder_start"):
        tiny(decoder_start="bos", first_level_readout="start")
    with pytest.raises(ValueError, match="first_level_readout must be one of"):
        tiny(decoder_start="last_item", first_level_readout="first")


@pytest.mark.parametrize("final_dropout", [True, False])
def test_final_dropout_is_the_only_switch_on_the_normed_outputs(final_dropout):
    """With every other dropout at 0, a training pass equals an eval pass exactly when the
    encoder's and decoder's normed outputs and the decoder's start are not dropped
    (``final_dropout=False``, SASRec's placement); with T5's placement all three are."""
    torch.manual_seed(0)
    m = tiny(dropout=0.5, final_dropout=final_dropout, decoder_start="last_item")
    finals = [m.encoder.output_dropout, m.decoder.output_dropout, m.decoder.start_dropout]
    for module in m.modules():
        if isinstance(module, torch.nn.Dropout) and not any(module is f for f in finals):
            module.p = 0.0
    codes, mask, target = batch(seed=3)
    train = m.train()(codes, mask, target)
    evaluated = m.eval()(codes, mask, target)
    same = [torch.equal(a, b) for a, b in zip(train, evaluated)]
    assert same == [not final_dropout] * len(LEVELS)
    # the memory alone: dropped only under T5's placement
    memory_train, _ = m.train().encode(codes, mask)
    memory_eval, _ = m.eval().encode(codes, mask)
    assert torch.equal(memory_train, memory_eval) == (not final_dropout)
    # the token inputs after the start are still dropped under SASRec's placement
    m.decoder.dropout.p = 0.5
    train = m.train()(codes, mask, target)
    assert torch.equal(train[0], evaluated[0]) == (not final_dropout)
    assert not any(torch.equal(a, b) for a, b in zip(train[1:], evaluated[1:]))


def test_t5_placement_drops_the_decoder_inputs_in_one_draw():
    """With ``final_dropout=True`` (the default) the decoder's inputs take one dropout draw
    over every position, as before the key existed, so seeded runs made then repeat."""
    from recbole_bbq.modules.generator import Decoder
    decoder = Decoder([], torch.nn.Identity(), 0.5, final_dropout=True).train()
    x = torch.randn(3, 4, 8)
    torch.manual_seed(5)
    out = decoder(x, None, None)
    torch.manual_seed(5)
    torch.testing.assert_close(out, decoder.output_dropout(decoder.dropout(x)), rtol=0, atol=0)


def test_input_norm_makes_the_encoder_blind_to_the_input_embeddings_scale():
    """``input_norm=True`` normalises each history token's summed embeddings before the
    encoder (SASRec's input LayerNorm): scaling every input embedding table leaves the memory
    as it was; without the norm it moves."""
    codes, mask, _ = batch(seed=4)
    for input_norm in (True, False):
        torch.manual_seed(0)
        m = tiny(input_norm=input_norm).eval()
        memory, _ = m.encode(codes, mask)
        with torch.no_grad():
            for table in [*m.token_emb, m.level_emb, m.position_emb]:
                table.weight.mul_(3.0)
        scaled, _ = m.encode(codes, mask)
        # (RMSNorm's eps leaves ~2e-5 at these small embeddings; unnormalised, ~1)
        assert torch.allclose(scaled, memory, atol=1e-4) == input_norm
    assert tiny(input_norm=True).input_norm is not None and tiny().input_norm is None


@pytest.mark.parametrize("history_tokens", ["levels", "item"])
def test_all_padding_rows_no_nan(history_tokens):
    torch.manual_seed(0)
    m = tiny(history_tokens=history_tokens)
    codes, mask, target = batch(seed=3)
    mask[1] = False
    mask[3] = False
    m.train()
    loss = m.loss(codes, mask, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    m.eval()
    memory, mmask = m.encode(codes, mask)
    assert torch.isfinite(memory).all() and (memory[1] == 0).all()
    for lg in m(codes, mask, target):
        assert torch.isfinite(lg).all()
    # an empty history is the same whatever its codes
    other = codes.clone()
    other[1] = torch.flip(codes[1], dims=[0])
    for a, b in zip(m(codes, mask, target), m(other, mask, target)):
        assert torch.equal(a[1], b[1])


@pytest.mark.parametrize("tie, start", [(False, "bos"), (True, "bos"), (True, "last_item")])
def test_teacher_forcing_matches_stepwise_decoding(tie, start):
    torch.manual_seed(0)
    m = tiny(n_dec_layers=2, tie_embeddings=tie, decoder_start=start).eval()
    codes, mask, target = batch(seed=4)
    tf = m(codes, mask, target)
    memory, mmask = m.encode(codes, mask)
    for l in range(len(LEVELS)):
        step = m.decode_logits(memory, mmask, target[:, :l])
        torch.testing.assert_close(step, tf[l], rtol=1e-5, atol=1e-5)
    # grouped prefixes (G per memory row) match the expanded-memory computation
    G = 3
    prefixes = torch.stack([torch.randint(0, n, (codes.shape[0] * G,)) for n in LEVELS[:2]], -1)
    grouped = m.decode_logits(memory, mmask, prefixes)
    expanded = m.decode_logits(
        memory.repeat_interleave(G, 0), mmask.repeat_interleave(G, 0), prefixes
    )
    torch.testing.assert_close(grouped, expanded, rtol=1e-5, atol=1e-5)
    # incremental decoding with a key/value cache (used by beam search) gives the same logits,
    # also after expanding/reordering rows like beam selection does
    state = m.start_decoding(memory, mmask)
    torch.testing.assert_close(m.decode_step(state), tf[0], rtol=1e-5, atol=1e-5)
    B = codes.shape[0]
    rows = torch.arange(B).repeat_interleave(G)  # row b*G+g continues memory row b's prefix
    state.reorder(rows)
    step1 = m.decode_step(state, prefixes[:, 0])
    ref1 = m.decode_logits(memory, mmask, prefixes[:, :1])
    torch.testing.assert_close(step1, ref1, rtol=1e-5, atol=1e-5)
    perm = torch.cat([torch.randperm(G) + b * G for b in range(B)])  # shuffle beams within rows
    state.reorder(perm)
    step2 = m.decode_step(state, prefixes[perm, 1])
    torch.testing.assert_close(step2, m.decode_logits(memory, mmask, prefixes[perm]),
                               rtol=1e-5, atol=1e-5)
    # target_log_prob = sum of per-level log-softmax
    lp = m.target_log_prob(codes, mask, target)
    ref = sum(torch.log_softmax(tf[l], -1).gather(1, target[:, l : l + 1]).squeeze(1)
              for l in range(len(LEVELS)))
    torch.testing.assert_close(lp, ref)


@pytest.mark.parametrize("init, scale", [("normal", 1.0), ("t5", 32 ** -0.5)])
def test_tied_embeddings_score_each_level_against_its_token_table(init, scale):
    torch.manual_seed(0)
    m = tiny(tie_embeddings=True, init=init).eval()
    assert m.heads is None
    assert not any("heads" in name for name, _ in m.named_parameters())
    untied = tiny(init=init)
    extra = sum(p.numel() for p in untied.heads.parameters())
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in m.parameters()) == extra
    codes, mask, target = batch(seed=2)
    memory, mmask = m.encode(codes, mask)
    h = m.decode_hidden(memory, mmask, target[:, :-1])
    for l, logits in enumerate(m(codes, mask, target)):
        torch.testing.assert_close(logits, (h[:, l] * scale) @ m.token_emb[l].weight.T)
    # a last-level token that no history holds (and the decoder never reads) still learns
    # its embedding, from being predicted
    codes[..., -1] = 0
    target[:, -1] = torch.arange(1, target.shape[0] + 1) % LEVELS[-1]
    target[target[:, -1] == 0, -1] = 1
    for model, learns in ((m, True), (untied, False)):
        model.train()
        model.loss(codes, mask, target).backward()
        grad = model.token_emb[-1].weight.grad[target[:, -1]]
        assert bool(grad.abs().sum() > 0) == learns


def item_table(seed=0, n_items=9):
    """IDs of ``n_items`` items over LEVELS: level-1 tokens 0 and 1 shared (3 and 2 items),
    tokens 2..5 private, token 6 unused."""
    g = torch.Generator().manual_seed(seed)
    first = torch.tensor([0, 0, 0, 1, 1, 2, 3, 4, 5])[:n_items]
    rest = [torch.randint(0, n, (n_items,), generator=g) for n in LEVELS[1:]]
    return torch.stack([first, *rest], dim=-1)


@pytest.mark.parametrize("history_tokens", ["levels", "item"])
def test_first_level_items_scores_each_token_against_its_items_mean_embedding(history_tokens):
    torch.manual_seed(0)
    items = item_table()
    m = tiny(tie_embeddings=True, first_level_embeddings="items", item_codes=items,
             history_tokens=history_tokens, decoder_start="last_item").eval()
    codes, mask, target = batch(seed=3)
    memory, mmask = m.encode(codes, mask)
    h = m.decode_hidden(memory, mmask, target[:, :-1])
    summed = sum(m.token_emb[l](items[:, l]) for l in range(len(LEVELS)))  # [n_items, d]
    expected = torch.zeros(LEVELS[0], m.d_model)
    for token in range(LEVELS[0]):
        under = items[:, 0] == token
        if under.any():
            expected[token] = summed[under].mean(0)
    logits = m(codes, mask, target)
    reference = (h[:, 0] @ expected.T).index_fill(1, torch.tensor([6]), float("-inf"))
    torch.testing.assert_close(logits[0], reference)  # the unused token 6 gets no mass
    assert not any(name.startswith("first_level") for name in m.state_dict())  # rebuilt, not saved
    # a private token is scored against its item's whole embedding
    torch.testing.assert_close(expected[2], summed[5])
    for l in range(1, len(LEVELS)):  # later levels keep their own token tables
        torch.testing.assert_close(logits[l], h[:, l] @ m.token_emb[l].weight.T)
    # the cached step decoding used by beam search scores the first level the same way
    torch.testing.assert_close(m.decode_step(m.start_decoding(memory, mmask)), logits[0])
    # the first level's loss now trains the later levels' embeddings of the target's items
    m.train()
    F = torch.nn.functional
    F.cross_entropy(m(codes, mask, target)[0], target[:, 0]).backward()
    assert m.token_emb[2].weight.grad[items[:, 2]].abs().sum() > 0


def test_first_level_items_equals_tokens_when_every_item_has_its_own_token():
    """One-level IDs, one token per item (the atomic control): the two scorings coincide."""
    torch.manual_seed(0)
    n = 6
    sizes = dict(d_model=16, n_heads=2, d_head=8, d_ff=32, n_enc_layers=1, n_dec_layers=1,
                 dropout=0.0, tie_embeddings=True, decoder_start="last_item")
    tokens = SemanticIDGenerator([n], max_history=T, **sizes).eval()
    item_codes = torch.randperm(n).unsqueeze(1)
    torch.manual_seed(0)  # the same weights
    items = SemanticIDGenerator([n], max_history=T, first_level_embeddings="items",
                                item_codes=item_codes, **sizes).eval()
    history = torch.randint(0, n, (4, T, 1))
    mask = torch.ones(4, T, dtype=torch.bool)
    target = torch.randint(0, n, (4, 1))
    torch.testing.assert_close(items(history, mask, target)[0], tokens(history, mask, target)[0])


def test_first_level_items_needs_tied_embeddings_and_the_item_table():
    with pytest.raises(ValueError, match="needs tie_embeddings=True"):
        tiny(first_level_embeddings="items", item_codes=item_table())
    with pytest.raises(ValueError, match=r"needs item_codes \[n_items, n_levels\]"):
        tiny(tie_embeddings=True, first_level_embeddings="items")
    with pytest.raises(ValueError, match="first_level_embeddings must be one of"):
        tiny(first_level_embeddings="item")
    bad = item_table()
    bad[4, 1] = LEVELS[1]
    with pytest.raises(ValueError, match=r"item_codes row 4 has level-2 code 5, outside 0..4"):
        tiny(tie_embeddings=True, first_level_embeddings="items", item_codes=bad)


class ScaledValueAttention(MultiHeadAttention):
    """Test double of the BBQRec hook: multiplies v elementwise by a per-call factor."""

    calls = 0

    def combine(self, weights, v, scale=None, **attn_kwargs):
        type(self).calls += 1
        if scale is not None:
            v = v * scale
        return super().combine(weights, v, **attn_kwargs)


def test_combine_hook_is_used():
    torch.manual_seed(0)
    base = tiny(n_enc_layers=2).eval()
    torch.manual_seed(0)
    hooked = tiny(n_enc_layers=2, attention_cls=ScaledValueAttention).eval()
    hooked.load_state_dict(base.state_dict())
    assert all(isinstance(layer.self_attn, ScaledValueAttention) for layer in hooked.encoder.layers)
    codes, mask, target = batch(seed=5)
    ref = base(codes, mask, target)
    ScaledValueAttention.calls = 0
    same = hooked(codes, mask, target)
    assert ScaledValueAttention.calls == 2  # once per encoder layer, never in the decoder
    for a, b in zip(ref, same):  # base runs the fused kernel, the hook the explicit softmax
        assert torch.allclose(a, b, atol=1e-5)
    # kwargs flow from forward/encode to combine and change the outputs
    scaled = hooked(codes, mask, target, scale=torch.tensor(3.0))
    assert not torch.allclose(scaled[0], ref[0], atol=1e-4)
    scaled_loss = hooked.loss(codes, mask, target, scale=torch.tensor(3.0))
    assert not torch.isclose(scaled_loss, base.loss(codes, mask, target))
    mem_a, _ = hooked.encode(codes, mask, scale=torch.tensor(3.0))
    mem_b, _ = base.encode(codes, mask)
    assert not torch.allclose(mem_a, mem_b, atol=1e-4)


def test_history_positions():
    mask = torch.tensor([[True, True, True, False], [False, True, True, False]])
    assert tiny().history_positions(mask).tolist() == [[2, 1, 0, 0], [0, 1, 0, 0]]
    assert tiny(position_order="oldest").history_positions(mask).tolist() == [
        [0, 1, 2, 0],
        [0, 0, 1, 0],
    ]


def test_rejects_too_long_history():
    m = tiny()
    codes, mask, target = batch()
    with pytest.raises(ValueError):
        m.encode(torch.cat([codes, codes], 1), torch.cat([mask, mask], 1))  # 10 > T + 2


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_attention_equals_the_explicit_softmax(causal, masked):
    """The plain-attention path runs PyTorch's fused kernel; it must give what
    attention_weights + combine give, including all-zero rows for fully masked queries."""
    from recbole_bbq.modules.generator import MultiHeadAttention

    torch.manual_seed(0)
    attention = MultiHeadAttention(d_model=16, n_heads=2, d_head=8).eval()
    x = torch.randn(3, 5, 16)
    key_mask = None
    if masked:
        key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    fused = attention(x, x, key_mask=key_mask, causal=causal)
    q = attention._split(attention.q_proj(x))
    k, v = attention.project_kv(x)
    weights = attention.attention_weights(q, k, key_mask=key_mask, causal=causal)
    explicit = attention.combine(weights, v).transpose(1, 2).reshape(3, 5, 16)
    assert torch.allclose(fused, attention.o_proj(explicit), atol=1e-6)
    if masked:
        assert torch.equal(fused[2], torch.zeros(5, 16))


def test_fused_projections_give_the_separate_products_results(monkeypatch):
    """q, k and v by one product over the stacked weights: the same loss, the same gradient
    for every parameter and the same beam scores as three separate products, and the
    checkpoint keys are unchanged."""
    from recbole_bbq.modules.beam_search import SemanticIDTrie, constrained_beam_search

    codes, mask, target = batch()
    items = torch.stack([torch.randint(0, n, (30,), generator=torch.Generator().manual_seed(1))
                         for n in LEVELS], dim=-1)
    trie = SemanticIDTrie(torch.cat([torch.full((1, 3), -1), items]))
    results = {}
    for fused in (True, False):
        monkeypatch.setattr(MultiHeadAttention, "fuse_projections", fused)
        torch.manual_seed(0)
        m = tiny(n_enc_layers=2, n_dec_layers=2)
        loss = m.loss(codes, mask, target)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters()}
        leaves, scores = constrained_beam_search(m, codes, mask, trie, beam_size=4)
        results[fused] = (loss.detach(), grads, leaves, scores, sorted(m.state_dict()))
    (loss1, grads1, leaves1, scores1, keys1), (loss0, grads0, leaves0, scores0, keys0) = results.values()
    assert keys1 == keys0
    assert torch.allclose(loss1, loss0, atol=1e-6)
    for name, grad in grads0.items():
        assert torch.allclose(grads1[name], grad, atol=1e-6), name
    assert torch.equal(leaves1, leaves0) and torch.allclose(scores1, scores0, atol=1e-5)


def test_cpu_autocast_attention_takes_the_explicit_path(monkeypatch):
    """Under bfloat16 CPU autocast the fused kernel is about half as fast as the explicit
    softmax (benchmarks/bench_cpu_amp.py), so only float32 calls it; both stay close to the
    float32 result."""
    import torch.nn.functional as F

    from recbole_bbq.modules.generator import MultiHeadAttention

    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    attention = MultiHeadAttention(d_model=16, n_heads=2, d_head=8).eval()
    x = torch.randn(3, 5, 16)
    key_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    full = attention(x, x, key_mask=key_mask)
    assert len(calls) == 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = attention(x, x, key_mask=key_mask)
    assert len(calls) == 1 and low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), full, atol=0.05)
    assert torch.equal(low[2].float(), torch.zeros(5, 16))  # a query with no visible key: zeros
    # the class switch puts it back on the fused kernel (what bench_cpu_amp.py compares)
    monkeypatch.setattr(MultiHeadAttention, "fused_kernel_in_cpu_autocast", True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused_low = attention(x, x, key_mask=key_mask)
    assert len(calls) == 2 and torch.allclose(fused_low.float(), full, atol=0.05)
