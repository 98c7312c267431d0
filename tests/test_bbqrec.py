"""BBQRec and its ablations: tokenizer structure, tuple tokens, and both stages end to end."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from recbole.data import create_dataset, data_preparation

from conftest import make_synthetic_dataset, tiny_config
from recbole_bbq import compat
from recbole_bbq.config import Config
from recbole_bbq.modules.bbq_tokenizer import BBQTokenizer
from recbole_bbq.modules.semantic_ids import tuple_tokens
from recbole_bbq.modules.similarity_attention import SimilarityAttention
from recbole_bbq.cli import main
from recbole_bbq.quick_start import run_recbole_bbq
from recbole_bbq.trainer import TwoStageTrainer


METRICS = {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}
TINY_BBQ = {
    "codebook_dim": 8, "codebook_size": 8, "n_levels": 2, "sim_buckets": 10,
    "encoder_hidden_dims": [16], "club_hidden_dim": 8, "seq_inner_size": 16,
    "epochs": 1, "tokenizer_epochs": 1,
}
# the signals each variant must quantize (the fixture has text, image and category features)
VARIANT_SIGNALS = {
    "BBQRec": ["id", "text", "image"],
    "BBQRec_noMIM": ["id", "text", "image"],
    "BBQRec_noRec": ["text", "image"],
    "BBQRec_noU": ["id", "text", "image"],
    "BBQRec_S": ["id", "text", "image"],
    "BBQRec_E": ["id", "text", "image"],
    "BBQRec_noID": ["text", "image"],
    "BBQRec_noText": ["id", "image"],
    "BBQRec_noImage": ["id", "text"],
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole writes its log/ folder into the working directory
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path


def bbq_config(workdir, **overrides):
    return tiny_config(workdir, workdir / "data", **{**TINY_BBQ, **overrides})


def tokenizer(**kw):
    torch.manual_seed(0)
    args = dict(modality_dims={"text": 6, "image": 5}, n_items=12, latent_dim=4, n_levels=2,
                codebook_size=3, hidden_dims=[8], club_hidden_dim=4, seq_inner_size=8,
                max_seq_length=5)
    args.update(kw)
    return BBQTokenizer(**args)


# ---------------------------------------------------------------- semantic IDs
def test_tuple_tokens_one_token_per_distinct_tuple_per_level():
    # 2 signals x 5 items x 2 levels
    codes = np.array([
        [[0, 1], [0, 1], [0, 2], [1, 1], [0, 1]],  # signal 1
        [[3, 0], [3, 0], [3, 0], [3, 0], [2, 0]],  # signal 2
    ])
    tokens, sizes = tuple_tokens(codes)
    assert tokens.shape == (5, 2)
    assert sizes == [3, 2]  # level 1 tuples (0,3) (1,3) (0,2); level 2 (1,0) (2,0)
    for level in range(2):
        for a in range(5):
            for b in range(5):
                same_tuple = tuple(codes[:, a, level]) == tuple(codes[:, b, level])
                assert (tokens[a, level] == tokens[b, level]) == same_tuple
        assert sorted(set(tokens[:, level])) == list(range(sizes[level]))  # dense ids


# ---------------------------------------------------------------- tokenizer structure
def test_shared_codebook_has_one_quantizer_and_nou_one_per_signal():
    def codebooks(t):
        return [n for n, _ in t.named_parameters() if "codebooks" in n]

    shared = tokenizer()
    assert shared.signals == ["id", "text", "image"]
    assert len(codebooks(shared)) == 1 and len(shared.quantizers) == 1
    separate = tokenizer(shared_codebook=False)
    assert len(codebooks(separate)) == 3 and len(separate.quantizers) == 3
    assert len(codebooks(tokenizer(shared_codebook=False, use_id=False))) == 2


def test_nomim_has_no_specific_encoders_and_decoders_see_q_only():
    full, plain = tokenizer(), tokenizer(use_mim=False)
    assert full.decoders["text"][0].in_features == 8  # q^m (+) zbar^m
    assert plain.specific_encoders is None and plain.club is None
    assert plain.decoders["text"][0].in_features == 4  # q^m only
    assert tokenizer(use_rec=False).sequence_encoder is None


def test_id_embeddings_start_in_0_001():
    w = tokenizer(n_items=500).id_embedding.weight.detach()
    assert float(w.min()) >= 0.0 and float(w.max()) <= 0.01


def test_losses_train_encoders_codebooks_and_id_embeddings():
    t = tokenizer()
    items = torch.tensor([1, 2, 3, 4, 5])
    x = {"text": torch.randn(5, 6), "image": torch.randn(5, 5)}
    t.kmeans_init(x, items)
    history = torch.tensor([[0, 1, -1], [2, -1, -1], [0, 1, 2]])
    out = t(x, items, history, torch.tensor([2, 3, 4]))
    assert set(out) == {"loss", "recon", "rq", "rec", "mim", "club_fit"}
    out["loss"].backward()
    for name in ("id_embedding.weight", "quantizers.0.codebooks",
                 "behavior_encoders.text.0.weight", "specific_encoders.image.0.weight",
                 "club.text.mu.0.weight", "sequence_encoder.position.weight"):
        grad = dict(t.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("init", ["pooled", "balanced"])
def test_shared_codebook_kmeans_divides_the_codes_as_codebook_init_says(init):
    from recbole_bbq.modules.quantizer import ResidualQuantizer

    t = tokenizer(codebook_size=6, codebook_init=init)
    items = torch.arange(1, 12)
    gen = torch.Generator().manual_seed(2)
    x = {"text": torch.randn(11, 6, generator=gen), "image": torch.randn(11, 5, generator=gen)}
    t.kmeans_init(x, items, seed=5)
    with torch.no_grad():
        z, _ = t.latents(x, items)
    expected = ResidualQuantizer(n_levels=2, codebook_size=6, dim=4)
    # balanced: the tokenizer hands the quantizer one block per signal (ID, text, image), in
    # signal order, so each gets 2 of the 6 codes (the split itself: tests/test_quantizer.py)
    expected.kmeans_init(torch.cat([z[s] for s in t.signals]), seed=5,
                         groups=[11, 11, 11] if init == "balanced" else None)
    assert torch.equal(t.quantizers[0].codebooks, expected.codebooks)
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        tokenizer(codebook_init="even")
    with pytest.raises(ValueError, match="each of the 3 signals a share of the codes"):
        tokenizer(codebook_size=2, codebook_init="balanced")


def _train_without_rec(latent_norm, steps=300, mim_gradient="both"):
    t = tokenizer(use_rec=False, latent_norm=latent_norm, mim_gradient=mim_gradient)
    gen = torch.Generator().manual_seed(1)
    x = {"text": torch.randn(11, 6, generator=gen), "image": torch.randn(11, 5, generator=gen)}
    ids = torch.arange(1, 12)
    t.kmeans_init(x, ids)
    optimizer = torch.optim.Adam(t.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        out = t(x, ids)
        out["loss"].backward()
        optimizer.step()
    return t, x, ids, {k: float(v.detach()) for k, v in out.items()}


def test_layer_normalised_latents_keep_the_club_objective_finite():
    # the paper as written: encoders inflate zbar / mu(z) to push the CLUB bound down without
    # limit, dragging the quantizer and q's fit with them (Beauty: -1.5e12 in one epoch)
    # (both latents moved by the bound, as in the CLUB reference code)
    _, _, _, raw = _train_without_rec("none")
    t, x, ids, normed = _train_without_rec("layer")
    assert raw["rq"] > 100 and raw["club_fit"] > 1000
    assert normed["rq"] < 5 and normed["club_fit"] < 50 and abs(normed["mim"]) < 5
    _, _, _, specific = _train_without_rec("layer", mim_gradient="specific")  # the default
    assert specific["rq"] < 5 and specific["club_fit"] < 50 and abs(specific["mim"]) < 5
    z, zbar = t.latents(x, ids)
    for latent in [*z.values(), *zbar.values()]:
        assert torch.allclose(latent.mean(-1), torch.zeros(len(ids)), atol=1e-5)
        assert torch.allclose(latent.var(-1, unbiased=False), torch.ones(len(ids)), atol=0.02)


def test_unknown_latent_norm_is_refused():
    with pytest.raises(ValueError, match="latent_norm"):
        tokenizer(latent_norm="batch")


def test_length_bucketed_history_encoding_equals_the_padded_batch():
    t = tokenizer()
    t.eval()  # no dropout: outputs must match exactly
    v = torch.randn(9, t.item_dim)
    history_index = torch.tensor([[0, 1, 2, 3, 4], [5, -1, -1, -1, -1], [6, 7, -1, -1, -1],
                                  [8, 0, 1, -1, -1], [2, -1, -1, -1, -1]])
    t.length_buckets = 1
    whole = t.encode_histories(v, history_index)
    t.length_buckets = 3
    assert torch.allclose(t.encode_histories(v, history_index), whole, atol=1e-5)


def test_contrastive_loss_masks_duplicate_targets():
    t = tokenizer(seq_dropout=0.0).eval()
    g = torch.Generator().manual_seed(0)
    v = torch.randn(6, 12, generator=g)  # 3 signals x D=4
    history = torch.tensor([[0, 1], [2, -1], [3, 1]])
    target_index = torch.tensor([4, 4, 5])
    loss = t.rec_loss(v, history, target_index, torch.tensor([7, 7, 9]))
    mask = history >= 0
    h = t.sequence_encoder(v[history.clamp(min=0)] * mask[..., None], mask)
    sim = F.normalize(h, dim=-1) @ F.normalize(v[target_index], dim=-1).t() / t.temperature
    # rows 0 and 1 share a target: the other copy is neither a positive nor a negative
    expected = torch.stack([
        -sim[0, 0] + torch.logsumexp(sim[0, [0, 2]], 0),
        -sim[1, 1] + torch.logsumexp(sim[1, [1, 2]], 0),
        -sim[2, 2] + torch.logsumexp(sim[2], 0),
    ]).mean()
    assert torch.allclose(loss, expected, atol=1e-5)


# ---------------------------------------------------------------- configuration
def test_variants_inherit_bbqrec_defaults_and_change_only_their_switch(workdir):
    data = {"data_path": str(workdir / "data")}
    base = Config("BBQRec", "synth", config_dict=data)
    assert (base["n_levels"], base["codebook_size"], base["codebook_dim"]) == (3, 256, 128)
    assert (base["sim_buckets"], base["temperature"], base["commitment"]) == (100, 0.1, 0.25)
    assert base["modalities"] == ["text", "image"] and base["similarity_attention"]
    no_mim = Config("BBQRec_noMIM", "synth", config_dict=data)
    assert no_mim["use_mim"] is False and no_mim["codebook_dim"] == 128
    assert no_mim["d_model"] == 128 and no_mim["beam_size"] == 20
    assert Config("BBQRec_E", "synth", config_dict=data)["inherit_codebook_embeddings"]
    tiger = Config("TIGER", "synth", config_dict=data)
    assert tiger["codebook_dim"] == 32 and tiger["use_mim"] is None  # no BBQRec leak
    # BBQRec's generator reads a history as SASRec does, its ablations too; TIGER keeps its own
    history_reading = ("decoder_start", "input_norm", "history_tokens")
    for name in ("BBQRec", "BBQRec_S", "BBQRec_noMIM"):
        config = Config(name, "synth", config_dict=data)
        assert tuple(config[k] for k in history_reading) == ("last_item", True, "item"), name
    assert tuple(tiger[k] for k in history_reading) == ("bos", False, "levels")


def test_dropping_a_modality_that_is_not_configured_is_a_clear_error(workdir):
    with pytest.raises(ValueError, match=r"configured modalities are \['text', 'category'\]"):
        run_recbole_bbq("BBQRec_noImage", "synth",
                        config_dict=bbq_config(workdir, modalities=["text", "category"]))


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", list(VARIANT_SIGNALS))
def test_every_variant_trains_both_stages_through_the_cli(workdir, name):
    argv = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}"
            for k, v in bbq_config(workdir).items()]
    result = main([f"--model={name}", "--dataset=synth", *argv])
    for split in ("best_valid_result", "test_result"):
        assert set(result[split]) == METRICS
        assert all(0.0 <= v <= 1.0 for v in result[split].values())
    ids = result["semantic_ids"]
    assert ids["signals"] == VARIANT_SIGNALS[name]
    assert set(ids["signal_utilisation"]) == set(VARIANT_SIGNALS[name])
    assert ids["collisions_after"]["colliding_items"] == 0
    assert len(ids["level_vocabulary"]) == 2


def built_model(workdir, name, **overrides):
    """A model after stage-1 initialisation (k-means) and semantic IDs, without training."""
    config = Config(name, "synth", config_dict=bbq_config(workdir, **overrides))
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    from recbole_bbq.utils import get_model

    torch.manual_seed(0)
    model = get_model(name)(config, train.dataset).to(config["device"])
    model.tokenizer_init(train)
    sem = model.build_semantic_ids()
    model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
    return model, config, train, test


#: what each variant's switch builds: one codebook per signal (noU), no z̄ / CLUB (noMIM), no
#: sequence encoder for L_Rec (noRec), plain encoder attention (S, E), inherited embeddings (E)
VARIANT_STRUCTURE = {  # name: (codebooks, has CLUB, has L_Rec encoder, similarity, inherits)
    "BBQRec": (1, True, True, True, False),
    "BBQRec_noMIM": (1, False, True, True, False),
    "BBQRec_noRec": (1, True, False, True, False),
    "BBQRec_noU": (3, True, True, True, False),
    "BBQRec_S": (1, True, True, False, False),
    "BBQRec_E": (1, True, True, False, True),
    "BBQRec_noID": (1, True, True, True, False),
    "BBQRec_noText": (1, True, True, True, False),
    "BBQRec_noImage": (1, True, True, True, False),
}


@pytest.mark.parametrize("name", list(VARIANT_STRUCTURE))
def test_each_variant_builds_the_model_its_ablation_names(workdir, name):
    """A variant that silently trained as full BBQRec would pass the end-to-end test above."""
    codebooks, mim, rec, similarity, inherits = VARIANT_STRUCTURE[name]
    model, *_ = built_model(workdir, name)
    t = model.tokenizer
    assert len(t.quantizers) == codebooks and t.shared_codebook == (codebooks == 1)
    assert (t.club is not None, t.specific_encoders is not None, t.use_mim) == (mim,) * 3
    assert (t.sequence_encoder is not None, t.use_rec) == (rec,) * 2
    assert t.signals == VARIANT_SIGNALS[name]
    assert isinstance(model.generator.encoder.layers[0].self_attn, SimilarityAttention) == similarity
    assert model.inherit_codebook_embeddings == inherits


def test_similarity_buckets_come_from_the_frozen_item_vectors(workdir):
    model, *_ = built_model(workdir, "BBQRec")
    assert isinstance(model.generator.encoder.layers[0].self_attn, SimilarityAttention)
    assert model.item_vectors.shape == (model.n_items, 3 * 8)
    assert (model.item_vectors[0] == 0).all() and model.item_vectors[1:].abs().sum() > 0
    seq = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0]], device=model.device)
    buckets = model.generator_attention_kwargs(seq)["item_sim_buckets"]
    v = F.normalize(model.item_vectors[[1, 2, 3]], dim=-1)
    expected = torch.round((v @ v.t() + 1) / 2 * 10).long()
    assert torch.equal(buckets[0, :3, :3], expected)
    s_model, *_ = built_model(workdir, "BBQRec_S")
    assert not isinstance(s_model.generator.encoder.layers[0].self_attn, SimilarityAttention)
    assert s_model.generator_attention_kwargs(seq) == {}


def test_e_variant_inherits_the_codebook_geometry(workdir):
    model, *_ = built_model(workdir, "BBQRec_E")
    per_signal = torch.as_tensor(model.per_signal_codes())  # [S, n-1, L]
    tokens = model.item_codes[1:]
    for level in range(2):
        first = {}
        for row, tok in enumerate(tokens[:, level].tolist()):
            first.setdefault(tok, row)
        toks, rows = list(first), list(first.values())
        concat = torch.cat([model.tokenizer.code_vectors(s, level, per_signal[s, rows, level])
                            for s in range(per_signal.shape[0])], dim=1)  # 24-d
        emb = model.generator.token_emb[level].weight[toks].detach()  # d_model 32 >= 24: isometry
        cos = lambda m: F.normalize(m, dim=-1) @ F.normalize(m, dim=-1).t()  # noqa: E731
        assert torch.allclose(cos(emb), cos(concat), atol=1e-4)
        assert abs(float(emb.std()) - model.generator.init_std) < 1e-3
    plain, *_ = built_model(workdir, "BBQRec_S")
    table = plain.generator.token_emb[0].weight
    concat0 = torch.cat([plain.tokenizer.code_vectors(s, 0, per_signal[s, :, 0])
                         for s in range(3)], dim=1)
    assert not torch.allclose(F.normalize(table[plain.item_codes[1:, 0]], dim=-1)
                              @ F.normalize(table[plain.item_codes[1:, 0]], dim=-1).t(),
                              F.normalize(concat0, dim=-1) @ F.normalize(concat0, dim=-1).t(),
                              atol=1e-2)


@pytest.mark.parametrize("history_tokens, first_level", [("levels", "tokens"), ("item", "tokens"),
                                                        ("item", "items")])
def test_reloaded_best_checkpoint_reproduces_the_test_metrics(workdir, history_tokens, first_level):
    """item_vectors (the similarity buffers) travel in the checkpoint and are restored; with
    one encoder position per history item too, and with the first level scored against its
    items (the generator's item table rebuilt from the checkpoint's IDs)."""
    from recbole_bbq.model import BBQRec

    config_dict = {**bbq_config(workdir, epochs=2), "history_tokens": history_tokens,
                   "first_level_embeddings": first_level}
    result = run_recbole_bbq("BBQRec", "synth", config_dict=config_dict)
    config = Config("BBQRec", "synth", config_dict=config_dict)
    train, _, test = data_preparation(config, create_dataset(config))
    torch.manual_seed(123)  # a differently initialised fresh model
    model = BBQRec(config, train.dataset).to(config["device"])
    assert not model.has_semantic_ids and model.item_vectors.numel() == 0
    trainer = TwoStageTrainer(config, model)
    again = trainer.evaluate(test, load_best_model=True, model_file=result["checkpoint"])
    assert dict(again) == result["test_result"]
    assert model.item_vectors.shape == (model.n_items, 24) and model.item_vectors.abs().sum() > 0
    assert isinstance(model.generator.encoder.layers[0].self_attn, SimilarityAttention)
    assert model.generator.history_tokens == history_tokens
    assert model.generator.first_level_embeddings == first_level
    if first_level == "items":
        assert torch.equal(model.generator.first_level_items, model.item_codes[1:])


def test_a_checkpoint_older_than_a_key_is_rebuilt_with_the_value_it_stands_for(workdir):
    """A BBQRec checkpoint saved before history_tokens and decoder_start existed trained TIGER's
    layout and BOS start, whatever BBQRec's defaults are now: load_trained must rebuild that
    model (the weights alone would load into either, silently). Likewise its tokenizer: made
    before latent_norm / loss_reduction / mim_gradient, it had no latent norm (parameter-free,
    so its weights would load silently under today's), averaged errors and let L_MIM move both
    latents."""
    from recbole_bbq import compat
    from recbole_bbq.recommend import load_trained

    older_tokenizer = {"latent_norm": "none", "loss_reduction": "mean", "mim_gradient": "both"}
    config_dict = {**bbq_config(workdir, epochs=1), "history_tokens": "levels", "decoder_start": "bos",
                   **older_tokenizer}
    result = run_recbole_bbq("BBQRec", "synth", config_dict=config_dict)
    state = compat.load_checkpoint(result["checkpoint"])
    for key in ("history_tokens", "decoder_start", "first_level_embeddings", *older_tokenizer):
        del state["config"][key]
    older = workdir / "older.pth"
    torch.save(state, older)
    model = load_trained(str(older), data_path=str(workdir / "data")).model
    generator = model.generator
    assert (generator.history_tokens, generator.decoder_start) == ("levels", "bos")
    assert generator.first_level_embeddings == "tokens"
    assert {key: getattr(model.tokenizer, key) for key in older_tokenizer} == older_tokenizer


def test_reused_tokenizer_realigns_id_embeddings_by_item_token(workdir):
    model, config, train, _ = built_model(workdir, "BBQRec")
    state = model.tokenizer_state_dict()
    # the same tokenizer saved by a dataset whose internal ids run the other way round
    order = [0] + list(range(model.n_items - 1, 0, -1))
    permuted = dict(state["tokenizer"])
    permuted["id_embedding.weight"] = state["tokenizer"]["id_embedding.weight"][order]
    saved = {"tokenizer": permuted, "item_tokens": [model.item_tokens[i] for i in order]}
    torch.manual_seed(7)
    fresh = type(model)(config, train.dataset).to(config["device"])
    fresh.load_tokenizer_state_dict(saved)
    assert torch.equal(fresh.tokenizer.id_embedding.weight[1:],
                       model.tokenizer.id_embedding.weight[1:])
    assert np.array_equal(fresh.per_signal_codes(), model.per_signal_codes())


def test_reused_tokenizer_skips_stage_one_and_rebuilds_the_item_vectors(workdir, monkeypatch):
    config = bbq_config(workdir)
    first = run_recbole_bbq("BBQRec", "synth", config_dict=config)
    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer",
                        lambda *a, **k: pytest.fail("stage 1 ran"))
    seen = {}
    real = TwoStageTrainer._start_generator_phase

    def capture(self):
        seen["vectors"] = self.model.item_vectors.clone()
        real(self)

    monkeypatch.setattr(TwoStageTrainer, "_start_generator_phase", capture)
    second = run_recbole_bbq("BBQRec", "synth", config_dict={
        **config, "tokenizer_checkpoint": first["tokenizer_checkpoint"]})
    assert set(second["test_result"]) == METRICS
    assert seen["vectors"].shape == (41, 24) and seen["vectors"][1:].abs().sum() > 0
    # the vectors the first run's generator used: rebuilt from the loaded tokenizer, item by item
    trained = compat.load_checkpoint(first["checkpoint"])["state_dict"]["item_vectors"]
    torch.testing.assert_close(seen["vectors"], trained)


@pytest.mark.parametrize("routing, moves_behavior_encoder", [("both", True), ("specific", False)])
def test_mim_gradient_routing(routing, moves_behavior_encoder):
    """With ``mim_gradient='specific'`` the CLUB bound trains only the modality-specific
    encoders, so it can no longer be lowered by emptying the behavior-aligned latent z^m."""
    t = tokenizer(use_rec=False, mim_gradient=routing)
    x = {"text": torch.randn(10, 6), "image": torch.randn(10, 5)}
    ids = torch.arange(1, 11)
    z, zbar = t.latents(x, ids)
    z_m = z["text"].detach() if routing == "specific" else z["text"]
    mim = t.club["text"].mi_upper_bound(z_m, zbar["text"])
    # the tokenizer's own forward routes it the same way
    t.zero_grad()
    out = t(x, ids)
    (t.mim_weight * out["mim"]).backward()
    behavior = t.behavior_encoders["text"][0].weight.grad
    specific = t.specific_encoders["text"][0].weight.grad
    assert specific is not None and specific.abs().sum() > 0
    assert (behavior is not None and behavior.abs().sum() > 0) == moves_behavior_encoder
    assert torch.isfinite(mim)


def test_loss_reduction_sum_is_eq9_squared_norms():
    """``loss_reduction='sum'``: recon and RQ terms are squared L2 norms (eq. 9), i.e. the
    per-dimension means times the dimension."""
    x = {"text": torch.randn(10, 6), "image": torch.randn(10, 5)}
    ids = torch.arange(1, 11)
    with torch.no_grad():
        mean = tokenizer(use_rec=False, use_mim=False, loss_reduction="mean")(x, ids)
        total = tokenizer(use_rec=False, use_mim=False, loss_reduction="sum")(x, ids)
    assert float(total["rq"]) == pytest.approx(4 * float(mean["rq"]), rel=1e-5)  # D = 4
    assert float(total["recon"]) > 4.9 * float(mean["recon"])  # dims 6 and 5
    # with one modality the factor is exactly its dimension (not also the batch size)
    x = {"text": x["text"]}
    with torch.no_grad():
        mean = tokenizer(use_rec=False, use_mim=False, loss_reduction="mean",
                         modality_dims={"text": 6})(x, ids)
        total = tokenizer(use_rec=False, use_mim=False, loss_reduction="sum",
                          modality_dims={"text": 6})(x, ids)
    assert float(total["recon"]) == pytest.approx(6 * float(mean["recon"]), rel=1e-5)


def test_default_modalities_follow_what_the_dataset_has(tmp_path, monkeypatch):
    """A P5-style dataset has text and category but no image: BBQRec's default [text, image]
    gives way to what the dataset lists, unless the user chose the modalities."""
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data", name="p5like",
                           modalities={"text": 16, "category": 8})
    config = tiny_config(tmp_path, tmp_path / "data", **TINY_BBQ)
    cfg = Config("BBQRec", "p5like", config_dict=config)
    dataset = create_dataset(cfg)
    train, _, _ = data_preparation(cfg, dataset)
    from recbole_bbq.model import BBQRec

    assert BBQRec(cfg, train.dataset).tokenizer.signals == ["id", "text", "category"]
    chosen = Config("BBQRec", "p5like", config_dict={**config, "modalities": ["text", "image"]})
    with pytest.raises(Exception, match=r"p5like\.feat_image\.npz not found"):
        BBQRec(chosen, train.dataset)
