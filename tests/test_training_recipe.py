"""The training recipe (warm-up, decay, weight-decay groups, end reasons) and exact resume."""
import math
import os

import pytest
import torch
from torch import nn

from conftest import make_synthetic_dataset, tiny_config
from recbole_bbq import compat
from recbole_bbq.config import ConfigError
from recbole_bbq.model import TIGER
from recbole_bbq.modules.generator import SemanticIDGenerator
from recbole_bbq.quick_start import run_recbole_bbq
from recbole_bbq.trainer import TwoStageTrainer
from recbole_bbq.trainer.schedule import (
    decay_parameter_groups,
    end_reason,
    horizon_steps,
    lr_multiplier,
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path


# ---------------------------------------------------------------------- schedule shapes
def test_warmup_is_linear_then_cosine_decays_to_the_floor():
    f = lr_multiplier("cosine", warmup_steps=4, horizon=14, min_lr_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert f(14) == pytest.approx(0.1) and f(1000) == pytest.approx(0.1)
    values = [f(s) for s in range(4, 15)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_inverse_sqrt_and_linear_and_constant():
    inv = lr_multiplier("inverse_sqrt", warmup_steps=100, horizon=1)
    assert inv(99) == pytest.approx(1.0) and inv(399) == pytest.approx(0.5)
    lin = lr_multiplier("linear", warmup_steps=0, horizon=10)
    assert lin(0) == 1.0 and lin(5) == pytest.approx(0.5) and lin(10) == 0.0
    assert lr_multiplier("constant", 0, 10)(123) == 1.0
    with pytest.raises(ValueError, match="lr_scheduler must be one of"):
        lr_multiplier("cosine_restarts", 0, 10)


def test_horizon_in_steps_or_epochs():
    assert horizon_steps(None, epochs=7, steps_per_epoch=10) == 70
    assert horizon_steps(250, epochs=7, steps_per_epoch=10) == 250
    assert horizon_steps("30e", epochs=7, steps_per_epoch=10) == 300
    with pytest.raises(ValueError, match="schedule_horizon"):
        horizon_steps("soon", epochs=7, steps_per_epoch=10)


def test_weight_decay_reaches_weight_matrices_only():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    decay, no_decay = decay_parameter_groups([model], 0.1, "matrices")
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]  # the Linear weight
    assert len(no_decay["params"]) == 4  # embedding, linear bias, norm weight and bias
    (everything,) = decay_parameter_groups([model], 0.1, "all")
    assert len(everything["params"]) == 5


def test_hidden_scope_leaves_the_generator_output_layers_undecayed():
    gen = SemanticIDGenerator([6, 7], max_history=3, d_model=8, n_heads=2, d_head=4, d_ff=16,
                              n_enc_layers=1, n_dec_layers=1, output_bias=False)
    heads = {id(p) for p in gen.heads.parameters()}
    assert len(heads) == 2  # one weight per level, no bias
    decay, no_decay = decay_parameter_groups([gen], 0.1, "matrices")
    assert heads <= {id(p) for p in decay["params"]}
    decay, no_decay = decay_parameter_groups([gen], 0.1, "hidden")
    assert heads <= {id(p) for p in no_decay["params"]}
    assert not heads & {id(p) for p in decay["params"]}
    # everything else is split as under "matrices": the attention and FFN weights still decay
    assert {id(p) for p in decay["params"]} == {
        id(p) for p in decay_parameter_groups([gen], 0.1, "matrices")[0]["params"]} - heads


def test_end_reasons():
    common = dict(epochs=10, steps_done=100, horizon=100)
    assert end_reason(budget=True, last_epoch=3, decays=True, **common) == "budget"
    assert end_reason(budget=False, last_epoch=3, decays=True, **common) == "early_stopping"
    assert end_reason(budget=False, last_epoch=9, decays=True, **common) == "schedule_end"
    assert end_reason(budget=False, last_epoch=9, decays=False, **common) == "epoch_cap"
    # a decaying schedule whose horizon lies past the last epoch was cut, not finished
    cut = dict(common, steps_done=50)
    assert end_reason(budget=False, last_epoch=9, decays=True, **cut) == "epoch_cap"
    assert end_reason(budget=False, last_epoch=9, decays=True, epochs=10, steps_done=50,
                      horizon=None) == "epoch_cap"


# ---------------------------------------------------------------------- end to end
RECIPE = {"lr_scheduler": "cosine", "warmup_steps": 2, "min_lr_ratio": 0.1,
          "learning_rate": 0.004, "weight_decay": 0.01, "clip_grad_norm": {"max_norm": 1.0}}


@pytest.mark.parametrize("model", ["TIGER", "SASRec"])
def test_schedule_runs_through_the_same_entry_point(workdir, model):
    config = tiny_config(workdir, workdir / "data", epochs=3, stopping_step=10, **RECIPE)
    result = run_recbole_bbq(model, "synth", config_dict=config)
    lrs = [row["lr"] for row in result["valid_history"]]
    assert len(lrs) == 3 and lrs[0] > lrs[1] > lrs[2] >= 0.004 * 0.1 - 1e-12
    assert result["optimizer_steps"] == result["schedule_horizon_steps"] > 0
    assert result["end_reason"] == "schedule_end"
    assert result["best_epoch"] in (0, 1, 2)


def _crash_on(call_number):
    real_epoch = TwoStageTrainer._train_epoch
    calls = {"n": 0}

    def epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call_number:
            raise RuntimeError("simulated crash")
        return real_epoch(self, *args, **kwargs)

    return epoch


def _files(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in os.listdir(folder)}


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(workdir, monkeypatch):
    config = tiny_config(workdir, workdir / "data", epochs=3, stopping_step=10,
                         dropout_prob=0.3, **RECIPE)
    straight = run_recbole_bbq("TIGER", "synth", config_dict={
        **config, "checkpoint_dir": str(workdir / "straight")})

    with monkeypatch.context() as patch:
        patch.setattr(TwoStageTrainer, "_train_epoch", _crash_on(2))
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_recbole_bbq("TIGER", "synth", config_dict={
                **config, "checkpoint_dir": str(workdir / "first")})
    before = _files(workdir / "first")
    (latest,) = [f for f in before if f.endswith("-latest.pth")]
    resumed = run_recbole_bbq("TIGER", "synth", config_dict={
        **config, "checkpoint_dir": str(workdir / "second"),
        "resume_checkpoint": str(workdir / "first" / latest)})

    # the same curve, learning rates, test metrics and final weights
    assert [r["valid_score"] for r in resumed["valid_history"]] == \
        [r["valid_score"] for r in straight["valid_history"]]
    assert [r["lr"] for r in resumed["valid_history"]] == [r["lr"] for r in straight["valid_history"]]
    assert resumed["test_result"] == straight["test_result"]
    assert resumed["optimizer_steps"] == straight["optimizer_steps"]
    final = {}
    for name, result in (("straight", straight), ("resumed", resumed)):
        stem, ext = os.path.splitext(result["checkpoint"])
        final[name] = compat.load_checkpoint(stem + "-latest" + ext)["state_dict"]
    for key, value in final["straight"].items():
        assert torch.equal(value, final["resumed"][key]), key
    # the resumed run wrote only into its own checkpoint_dir, under its own name
    assert _files(workdir / "first") == before
    assert resumed["checkpoint"].startswith(str(workdir / "second"))


def test_resuming_on_another_dataset_is_refused(workdir, monkeypatch):
    make_synthetic_dataset(workdir / "data", name="other", seed=1)
    config = tiny_config(workdir, workdir / "data", epochs=2)
    first = run_recbole_bbq("TIGER", "synth", config_dict=config)
    stem, ext = os.path.splitext(first["checkpoint"])
    with pytest.raises(compat.CheckpointError, match=r"TIGER on synth, this run TIGER on other"):
        run_recbole_bbq("TIGER", "other", config_dict={
            **config, "resume_checkpoint": stem + "-latest" + ext})


def test_resuming_with_weights_of_another_shape_names_the_setting(workdir):
    config = tiny_config(workdir, workdir / "data", epochs=1)
    first = run_recbole_bbq("TIGER", "synth", config_dict=config)
    stem, ext = os.path.splitext(first["checkpoint"])
    with pytest.raises(compat.CheckpointError,
                       match=r"do not fit .*tie_embeddings: False in the checkpoint, True now"):
        run_recbole_bbq("TIGER", "synth", config_dict={
            **config, "tie_embeddings": True, "epochs": 2,
            "tokenizer_checkpoint": first["tokenizer_checkpoint"],
            "resume_checkpoint": stem + "-latest" + ext})
    # a checkpoint made before a key existed: the key is named with the behaviour it stood for
    latest = torch.load(stem + "-latest" + ext, weights_only=True)
    del latest["config"]["output_bias"]
    torch.save(latest, stem + "-latest" + ext)
    with pytest.raises(compat.CheckpointError, match=r"do not fit .*output_bias: True in the checkpoint "
                                                     r"\(made before the key existed\), False now"):
        run_recbole_bbq("TIGER", "synth", config_dict={
            **config, "output_bias": False, "epochs": 2,
            "tokenizer_checkpoint": first["tokenizer_checkpoint"],
            "resume_checkpoint": stem + "-latest" + ext})


def test_resuming_as_another_model_of_the_same_shapes_is_refused(workdir):
    """decoder_start, first_level_readout, start_every_level, history_tokens and
    first_level_embeddings change no weight shape:
    without the check the weights would load and training would go on as another model."""
    config = {**tiny_config(workdir, workdir / "data", epochs=1), "tie_embeddings": True}  # items needs it
    first = run_recbole_bbq("TIGER", "synth", config_dict=config)
    stem, ext = os.path.splitext(first["checkpoint"])
    with pytest.raises(compat.CheckpointError,
                       match=r"trained as another model \(decoder_start: 'bos' in the checkpoint, "
                             r"'last_item' now, first_level_embeddings: 'tokens' in the checkpoint, "
                             r"'items' now, first_level_readout: 'decoder' in the checkpoint, "
                             r"'start' now, history_tokens: 'levels' in the checkpoint, 'item' now, "
                             r"start_every_level: False in the checkpoint, True now\)"):
        run_recbole_bbq("TIGER", "synth", config_dict={
            **config, "decoder_start": "last_item", "first_level_readout": "start",
            "start_every_level": True, "history_tokens": "item", "epochs": 2,
            "first_level_embeddings": "items",
            "tokenizer_checkpoint": first["tokenizer_checkpoint"],
            "resume_checkpoint": stem + "-latest" + ext})


def test_runs_started_together_get_distinct_names(workdir):
    from recbole_bbq.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole_bbq.model import TIGER

    config = Config("TIGER", "synth", config_dict=tiny_config(workdir, workdir / "data"))
    train, _, _ = data_preparation(config, create_dataset(config))
    names = {TwoStageTrainer(config, TIGER(config, train.dataset)).saved_model_file
             for _ in range(3)}
    assert len(names) == 3 and all("TIGER-synth-" in n for n in names)


def test_cosine_floor_math():
    f = lr_multiplier("cosine", 0, 2, 0.0)
    assert f(1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_shuffled_id_control_keeps_the_ids_and_deals_them_at_random(workdir, monkeypatch):
    config = tiny_config(workdir, workdir / "data", epochs=1)
    real = run_recbole_bbq("TIGER", "synth", config_dict=config)
    captured = {}
    real_phase = TwoStageTrainer._start_generator_phase

    def capture(self):
        captured["codes"] = self.model.item_codes.cpu().numpy().copy()
        real_phase(self)

    monkeypatch.setattr(TwoStageTrainer, "_start_generator_phase", capture)
    shuffled = run_recbole_bbq("TIGER", "synth", config_dict={
        **config, "shuffle_semantic_ids": True, "tokenizer_checkpoint": real["tokenizer_checkpoint"]})
    state = compat.load_checkpoint(real["tokenizer_checkpoint"])
    original = state["item_codes"].numpy()
    codes = captured["codes"]
    assert sorted(map(tuple, codes[1:])) == sorted(map(tuple, original[1:]))  # same multiset
    assert (codes[1:] != original[1:]).any(axis=1).mean() > 0.5  # most items got another ID
    assert shuffled["semantic_ids"]["shuffled_control"] is True


# ---------------------------------------------------------------------- mixed precision
def test_autocast_dtype_is_set_for_the_epoch_and_restored():
    from recbole_bbq.trainer.base import autocast_dtype

    before = torch.get_autocast_dtype("cpu")
    with autocast_dtype("cpu", "float16"):
        with torch.autocast("cpu"):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float16
    assert torch.get_autocast_dtype("cpu") == before


def test_enable_amp_trains_the_generator_in_the_chosen_precision(workdir, monkeypatch):
    seen = set()
    real_loss = TwoStageTrainer._train_epoch

    def epoch(self, *args, **kwargs):
        hook = self.model.generator.heads[0].register_forward_hook(
            lambda module, inputs, output: seen.add(output.dtype))
        try:
            return real_loss(self, *args, **kwargs)
        finally:
            hook.remove()

    monkeypatch.setattr(TwoStageTrainer, "_train_epoch", epoch)
    config = tiny_config(workdir, workdir / "data", enable_amp=True, amp_dtype="float16")
    result = run_recbole_bbq("TIGER", "synth", config_dict=config)
    assert seen == {torch.float16}  # not the CPU default, bfloat16
    assert all(math.isfinite(v) for v in result["test_result"].values())
    assert torch.get_autocast_dtype("cpu") == torch.bfloat16  # CPU default, restored


def record_dtypes(monkeypatch, owner, method, pick=lambda out: out) -> set:
    """Wrap ``owner.method`` so the dtype of ``pick(its output)`` lands in the returned set."""
    seen, real = set(), getattr(owner, method)

    def wrapper(self, *args):
        out = real(self, *args)
        seen.add(pick(out).dtype)
        return out

    monkeypatch.setattr(owner, method, wrapper)
    return seen


@pytest.mark.parametrize("eval_amp_dtype, expected", [(None, torch.float32),
                                                        ("bfloat16", torch.bfloat16)])
def test_eval_amp_dtype_scores_in_that_precision_and_returns_float32(workdir, monkeypatch,
                                                                     eval_amp_dtype, expected):
    """Training stays float32 (no enable_amp); only scoring runs under autocast, and the
    evaluator still gets float32 scores."""
    heads = set()
    real_predict = TIGER.full_sort_predict

    def predict(self, interaction):
        hook = self.generator.heads[0].register_forward_hook(
            lambda module, inputs, output: heads.add(output.dtype))
        try:
            return real_predict(self, interaction)
        finally:
            hook.remove()

    monkeypatch.setattr(TIGER, "full_sort_predict", predict)
    scores = record_dtypes(monkeypatch, TwoStageTrainer, "_full_sort_batch_eval", lambda out: out[1])
    config = tiny_config(workdir, workdir / "data", eval_amp_dtype=eval_amp_dtype)
    result = run_recbole_bbq("TIGER", "synth", config_dict=config)
    assert heads == {expected} and scores == {torch.float32}
    assert all(math.isfinite(v) for v in result["test_result"].values())


def test_eval_amp_dtype_hands_the_evaluator_float32_scores_of_a_recbole_model(workdir, monkeypatch):
    """SASRec's scores come out of autocast in bfloat16; the evaluator still gets float32."""
    from recbole.model.sequential_recommender.sasrec import SASRec

    from recbole_bbq.trainer import TrainingRunMixin

    produced = record_dtypes(monkeypatch, SASRec, "full_sort_predict")
    handed = record_dtypes(monkeypatch, TrainingRunMixin, "_full_sort_batch_eval", lambda out: out[1])
    config = tiny_config(workdir, workdir / "data", eval_amp_dtype="bfloat16")
    run_recbole_bbq("SASRec", "synth", config_dict=config)
    assert produced == {torch.bfloat16} and handed == {torch.float32}


@pytest.mark.parametrize("key", ["amp_dtype", "eval_amp_dtype"])
def test_amp_dtype_is_checked(workdir, key):
    config = tiny_config(workdir, workdir / "data", **{key: "fp8"})
    with pytest.raises(ConfigError, match=f"{key} must be .*bfloat16 or float16"):
        run_recbole_bbq("TIGER", "synth", config_dict=config)


# ---------------------------------------------------------------------- progress
def test_eta_from_the_mean_epoch_time():
    from recbole_bbq.trainer.base import format_eta

    assert format_eta(120.0, 4, 4, 30) == "epoch 4/30, ETA 13m00s"
    assert format_eta(7200.0, 2, 2, 5) == "epoch 2/5, ETA 3h00m"
    assert format_eta(50.0, 1, 11, 12) == "epoch 11/12, ETA 0m50s"  # resumed: 1 epoch timed
    assert format_eta(10.0, 3, 30, 30) == "epoch 30/30"


def test_epoch_lines_carry_the_progress_and_eta(workdir, caplog):
    import logging

    config = tiny_config(workdir, workdir / "data", epochs=2, state="INFO")
    with caplog.at_level(logging.INFO):
        run_recbole_bbq("TIGER", "synth", config_dict=config)
    text = caplog.text
    assert "(epoch 1/3, ETA" in text            # tokenizer: 3 epochs in tiny_config
    assert "(epoch 1/2, ETA" in text and "(epoch 2/2)" in text   # generator


def _codebook_gradient(input_dim=64, batch=1024):
    from recbole_bbq.modules.rqvae import RQVAE

    x = torch.randn(4096, input_dim, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = RQVAE(input_dim)
    model.kmeans_init(x, seed=0)
    model(x[:batch])["loss"].backward()
    return model.quantizer.codebooks.grad


def test_reproducibility_makes_two_thread_cpu_backward_repeat_exactly():
    """With reproducibility on, a seeded run repeats bit for bit on a 2-thread CPU: the
    codebook lookup's accumulating backward summed in a varying order before (a seeded TIGER
    stage 1 on Beauty gave 4,596 and 5,116 colliding items in two identical runs)."""
    from recbole_bbq.trainer.checkpoint import seed_everything

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seed_everything(0, reproducibility=True)
        assert torch.are_deterministic_algorithms_enabled()
        # new tensors are not NaN-filled first (a cost of deterministic mode from torch 2.2;
        # nothing reads memory it has not written), and the backward still repeats exactly
        assert getattr(getattr(torch.utils, "deterministic", None),
                       "fill_uninitialized_memory", False) is False
        first = _codebook_gradient()
        assert all(torch.equal(first, _codebook_gradient()) for _ in range(5))
        seed_everything(0, reproducibility=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("bigger, scores, expected", [
    (True, [0.1, 0.3, 0.2, 0.3, 0.25], 3),   # a tie with the best: RecBole saved the later one
    (True, [0.1, 0.3, 0.2], 1),
    (False, [2.0, 1.0, 1.5, 1.0], 3),
    (True, [], None),
])
def test_best_epoch_is_the_checkpoint_recbole_kept(bigger, scores, expected):
    from types import SimpleNamespace
    from recbole_bbq.trainer.base import TrainingRunMixin
    run = SimpleNamespace(valid_metric_bigger=bigger,
                          valid_history=[{"epoch": i, "valid_score": s} for i, s in enumerate(scores)])
    assert TrainingRunMixin.best_epoch(run) == expected
