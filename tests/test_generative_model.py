"""The RecBole-facing generative model: bucketing is exact, scores obey the protocol."""
import numpy as np
import pytest
import torch
from recbole.data import create_dataset, data_preparation

from conftest import tiny_config
from recbole_bbq.config import Config
from recbole_bbq.model import TIGER
from recbole_bbq.modules.semantic_ids import build_semantic_ids


def _tiger_with_ids(tmp_path, synthetic_data_path, monkeypatch, **overrides):
    monkeypatch.chdir(tmp_path)
    config = Config("TIGER", "synth",
                    config_dict={**tiny_config(tmp_path, synthetic_data_path), **overrides})
    dataset = create_dataset(config)
    train, valid, _ = data_preparation(config, dataset)
    torch.manual_seed(0)
    model = TIGER(config, train.dataset).to(config["device"])
    rng = np.random.default_rng(0)
    sem = build_semantic_ids(rng.integers(0, 8, size=(model.n_items - 1, 2)), [8, 8])
    model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
    model.eval()
    batch = next(iter(valid))[0].to(config["device"])
    return model, batch, train


@pytest.fixture
def tiger_with_ids(tmp_path, synthetic_data_path, monkeypatch):
    return _tiger_with_ids(tmp_path, synthetic_data_path, monkeypatch)


def test_length_bucketing_changes_nothing(tiger_with_ids):
    model, batch, train = tiger_with_ids
    train_batch = next(iter(train)).to(model.device)
    assert len(set(train_batch[model.ITEM_SEQ_LEN].tolist())) > 3  # lengths really differ
    results = {}
    for buckets in (1, 4):
        model.length_buckets = buckets
        results[buckets] = (model.calculate_loss(train_batch), model.full_sort_predict(batch))
    assert torch.allclose(results[1][0], results[4][0], atol=1e-6)
    assert torch.equal(torch.isinf(results[1][1]), torch.isinf(results[4][1]))
    finite = torch.isfinite(results[1][1])
    assert torch.allclose(results[1][1][finite], results[4][1][finite], atol=1e-5)


def test_first_level_centroids_are_computed_once_per_batch_with_the_same_loss_and_gradients(
        tmp_path, synthetic_data_path, monkeypatch):
    """Under ``first_level_embeddings: items`` the four length buckets of a batch share one
    computation of the level-1 centroids (forward and backward), and loss, every gradient and
    the search's scores equal those of computing them afresh in every chunk."""
    import contextlib

    model, batch, train = _tiger_with_ids(tmp_path, synthetic_data_path, monkeypatch,
                                          tie_embeddings=True, first_level_embeddings="items")
    generator = model.generator
    model.length_buckets = 4
    train_batch = next(iter(train)).to(model.device)
    calls = []
    compute = generator.first_level_item_embeddings

    def counted():
        calls.append(1)
        return compute()

    monkeypatch.setattr(generator, "first_level_item_embeddings", counted)

    def loss_grads_scores():
        calls.clear()
        model.zero_grad()
        loss = model.calculate_loss(train_batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        n_train_calls = len(calls)
        return loss.detach(), grads, model.full_sort_predict(batch), n_train_calls, len(calls)

    loss, grads, scores, train_calls, all_calls = loss_grads_scores()
    assert (train_calls, all_calls) == (1, 2)
    monkeypatch.setattr(generator, "first_level_shared", contextlib.nullcontext)
    loss_each, grads_each, scores_each, train_calls, _ = loss_grads_scores()
    assert train_calls > 1  # the reference really computed them per chunk
    assert torch.allclose(loss, loss_each, atol=1e-6)
    assert grads.keys() == grads_each.keys() and "generator.token_emb.1.weight" in grads
    for name in grads:
        assert torch.allclose(grads[name], grads_each[name], atol=1e-6), name
    assert torch.equal(torch.isinf(scores), torch.isinf(scores_each))
    finite = torch.isfinite(scores)
    assert torch.allclose(scores[finite], scores_each[finite], atol=1e-5)
    assert generator._first_level_shared is None  # nothing kept past the batch


def test_every_row_has_at_least_max_topk_finite_scores(tiger_with_ids):
    model, batch, _ = tiger_with_ids
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(batch[model.ITEM_SEQ]), model.n_items)
    assert (torch.isfinite(scores).sum(1) >= 10).all()
    assert torch.isinf(scores[:, 0]).all()  # the padding item is never generated


def test_beam_level_scores_reach_the_search(tiger_with_ids):
    """``beam_level_scores`` (the level-normalisation probe's switch) is what full_sort_predict
    hands the search: the model's log p by default, the trie-restricted scores when set."""
    model, batch, _ = tiger_with_ids
    assert model.beam_level_scores == "model"
    model_scores = model.full_sort_predict(batch)
    model.beam_level_scores = "children"
    children = model.full_sort_predict(batch)
    model.beam_level_scores = "model"
    assert torch.equal(model.full_sort_predict(batch), model_scores)
    finite = torch.isfinite(children)
    # restricted to the trie every level's probabilities are at least the model's
    assert (children[finite] >= model_scores[finite] - 1e-5).all()
    assert (children[finite] > model_scores[finite] + 1e-3).any()


def test_length_buckets_auto_picks_by_device_and_bad_values_are_named():
    from recbole_bbq.modules.length_buckets import resolve_length_buckets

    assert resolve_length_buckets("auto", "cpu") == 4
    assert resolve_length_buckets(None, "cuda:0") == 1
    assert resolve_length_buckets(3, "cuda") == 3 and resolve_length_buckets("2", "cpu") == 2
    for bad in (0, -1, "many", 2.5):
        with pytest.raises(ValueError, match="length_buckets"):
            resolve_length_buckets(bad, "cpu")


def test_generator_init_tying_output_bias_and_start_keys_reach_the_generator(
        tmp_path, synthetic_data_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inits = {}
    for init, tie, start, readout in (("normal", False, "bos", "decoder"),
                                      ("t5", True, "last_item", "start")):
        config = Config("TIGER", "synth", config_dict={
            **tiny_config(tmp_path, synthetic_data_path), "generator_init": init,
            "tie_embeddings": tie, "output_bias": False, "decoder_start": start,
            "first_level_readout": readout, "start_every_level": start == "last_item",
            "history_tokens": "item" if init == "t5" else "levels"})
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        model = TIGER(config, train.dataset)
        sem = build_semantic_ids(np.random.default_rng(0).integers(0, 8, (model.n_items - 1, 2)),
                                 [8, 8])
        model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
        inits[init] = model.generator
    assert inits["normal"].init == "normal" and inits["t5"].init == "t5"
    assert inits["normal"].decoder_start == "bos" and inits["t5"].decoder_start == "last_item"
    assert (inits["normal"].first_level_readout, inits["t5"].first_level_readout) == (
        "decoder", "start")
    assert inits["t5"].start_every_level and not inits["normal"].start_every_level
    assert (inits["normal"].history_tokens, inits["t5"].history_tokens) == ("levels", "item")
    assert inits["normal"].heads is not None and inits["t5"].heads is None
    assert all(head.bias is None for head in inits["normal"].heads)  # output_bias: False
    assert inits["t5"].token_emb[0].weight.std() > 10 * inits["normal"].token_emb[0].weight.std()


@pytest.mark.parametrize("first_level,tied", [("tokens", False), ("items", True)])
def test_compiled_generator_loss_equals_the_eager_one(tmp_path, synthetic_data_path, monkeypatch,
                                                      first_level, tied):
    """compile_generator routes calculate_loss through torch.compile (here the aot_eager
    backend: dynamo's trace and autograd's, no code generation) with the same loss and
    gradients as eager, over batches cut into length buckets of different shapes, with
    TIGER's per-level output layers (untied) and with tied token embeddings. Under
    first_level_embeddings="items" the level-1 centroids are computed outside the compiled
    loss, once per batch, and read from a module attribute inside it: the compiled graph
    must take them as this batch's input (not bake in the first batch's) and pass their
    gradient back to the token tables."""
    monkeypatch.chdir(tmp_path)
    models = {}
    for mode in (None, "default"):
        config = Config("TIGER", "synth", config_dict=tiny_config(
            tmp_path, synthetic_data_path, compile_generator=mode, compile_backend="aot_eager",
            tie_embeddings=tied, first_level_embeddings=first_level))
        dataset = create_dataset(config)
        train, _, _ = data_preparation(config, dataset)
        torch.manual_seed(0)
        model = TIGER(config, train.dataset).to(config["device"])
        sem = build_semantic_ids(np.random.default_rng(0).integers(0, 8, size=(model.n_items - 1, 2)), [8, 8])
        model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
        model.eval()  # no dropout: the two must see the same arithmetic
        models[mode] = model
    eager, compiled = models[None], models["default"]
    compiled.load_state_dict(eager.state_dict())
    assert eager.generator_loss == eager.generator.loss
    assert compiled.generator_loss != compiled.generator.loss
    assert compiled.generator.first_level_embeddings == first_level
    assert (compiled.generator.heads is None) == tied
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (eager, compiled)]
    for batch in list(iter(train))[:3]:
        batch = batch.to(eager.device)
        losses = []
        for model in (eager, compiled):
            model.zero_grad()
            loss = model.calculate_loss(batch)
            loss.backward()
            losses.append((loss.detach(), [p.grad.clone() for p in model.generator.parameters()]))
        assert torch.allclose(losses[0][0], losses[1][0], atol=1e-6)
        for a, b in zip(losses[0][1], losses[1][1]):
            assert torch.allclose(a, b, atol=1e-6)
        # a step moves the token tables, so a graph that kept the first batch's centroids
        # would score the next batch with stale ones
        for optimizer in optimizers:
            optimizer.step()


def test_unknown_compile_mode_is_named(tmp_path, synthetic_data_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config("TIGER", "synth", config_dict=tiny_config(
        tmp_path, synthetic_data_path, compile_generator="fastest"))
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    with pytest.raises(ValueError, match="compile_generator='fastest'"):
        TIGER(config, train.dataset)
