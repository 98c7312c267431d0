"""End to end through the quick-start on the synthetic multimodal fixture."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import TINY_LETTER, make_synthetic_dataset, tiny_config
from recbole_bbq import compat
from recbole_bbq.config import Config
from recbole_bbq.data.feature_store import FeatureFileError, feature_path, write_feature_file
from recbole_bbq.fileio import file_sha256
from recbole_bbq.cli import main, parse_args
from recbole_bbq.quick_start import run_recbole_bbq
from recbole_bbq.recommend import load_trained
from recbole_bbq.trainer import TwoStageTrainer
from recbole_bbq.utils import get_model

METRICS = {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}


def as_argv(config):
    return [f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in config.items()]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole writes its log/ folder into the working directory
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path


def check_metrics(result):
    for split in ("best_valid_result", "test_result"):
        assert set(result[split]) == METRICS
        assert all(0.0 <= v <= 1.0 for v in result[split].values())


def test_cli_trains_tiger_both_stages(workdir):
    config = tiny_config(workdir, workdir / "data")
    result = main(["--model=TIGER", "--dataset=synth", *as_argv(config)])
    check_metrics(result)
    assert set(result["stage_times_s"]) == {"tokenizer", "generator"}
    ids = result["semantic_ids"]
    assert ids["collisions_after"]["colliding_items"] == 0
    assert len(ids["utilisation"]) == config["n_levels"]
    assert os.path.isfile(result["checkpoint"]) and os.path.isfile(result["tokenizer_checkpoint"])
    table = result["tokenizer_checkpoint"].replace("-tokenizer.pth", "-semantic_ids.tsv")
    rows = open(table).read().splitlines()
    assert len(rows) == 1 + 40 and rows[0].startswith("item_id\tlevel_1")
    saved = json.load(open(result["results_file"]))
    assert saved["test_result"] == result["test_result"]
    assert saved["config"]["beam_size"] == config["beam_size"]
    assert result["generator_train_samples_per_s"] > 0 and result["test_users_per_s"] > 0


def test_cli_runs_recbole_builtin_sasrec(workdir, capsys):
    config = tiny_config(workdir, workdir / "data")
    result = main(["--model=SASRec", "--dataset=synth", *as_argv(config)])
    check_metrics(result)
    assert os.path.isfile(result["checkpoint"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("SASRec on synth: test recall@5 ")
    assert f"after 2 epochs, best epoch {result['best_epoch']}" in last
    assert last.endswith(f"results: {result['results_file']}")


def test_cli_tokenizer_only_saves_a_stage_one_that_a_later_run_reuses(workdir, capsys,
                                                                     monkeypatch):
    config = tiny_config(workdir, workdir / "data", epochs=1)
    stage1 = main(["--model=TIGER", "--dataset=synth", "--tokenizer_only", *as_argv(config)])
    path = stage1["tokenizer_checkpoint"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("TIGER on synth: stage 1 in ") and last.endswith(f"tokenizer: {path}")
    assert not list((workdir / "results").glob("*.json"))  # no generator was trained

    def must_not_train(*args, **kwargs):  # a seeded retraining would give the same statistics
        raise AssertionError("stage 1 ran although --tokenizer_checkpoint was given")

    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer", must_not_train)
    reused = main(["--model=TIGER", "--dataset=synth", f"--tokenizer_checkpoint={path}",
                   *as_argv(config)])
    assert reused["semantic_ids"]["utilisation"] == stage1["stats"]["utilisation"]
    assert reused["tokenizer_checkpoint_sha256"] == file_sha256(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--model=SASRec", "--dataset=synth", "--tokenizer_only", *as_argv(config)])
    assert exit_info.value.code == 2
    assert "SASRec has no item tokenizer" in capsys.readouterr().err


def test_best_checkpoint_reproduces_the_test_metrics(workdir):
    """The checkpoint holds the semantic IDs, so a fresh model rebuilds its generator from it."""
    from recbole.data import create_dataset, data_preparation

    from recbole_bbq.model import TIGER

    config_dict = tiny_config(workdir, workdir / "data")
    result = run_recbole_bbq("TIGER", "synth", config_dict=config_dict)
    config = Config("TIGER", "synth", config_dict=config_dict)
    dataset = create_dataset(config)
    train, _, test = data_preparation(config, dataset)
    model = TIGER(config, train.dataset)
    assert not model.has_semantic_ids
    trainer = TwoStageTrainer(config, model)
    again = trainer.evaluate(test, load_best_model=True, model_file=result["checkpoint"])
    assert dict(again) == result["test_result"]


def test_reused_tokenizer_skips_stage_one(workdir, monkeypatch):
    config = tiny_config(workdir, workdir / "data")
    first = run_recbole_bbq("TIGER", "synth", config_dict=config)
    tokenizer = first["tokenizer_checkpoint"]
    state = compat.load_checkpoint(tokenizer)

    def must_not_train(*args, **kwargs):
        raise AssertionError("stage 1 ran although a tokenizer checkpoint was given")

    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer", must_not_train)
    captured = {}
    real_set = TwoStageTrainer._start_generator_phase

    def capture(self):
        captured["codes"] = self.model.item_codes.cpu().numpy().copy()
        captured["tokens"] = list(self.model.item_tokens)
        real_set(self)

    monkeypatch.setattr(TwoStageTrainer, "_start_generator_phase", capture)
    second = run_recbole_bbq("TIGER", "synth", config_dict={**config, "tokenizer_checkpoint": tokenizer})
    check_metrics(second)
    saved = dict(zip(state["item_tokens"], map(tuple, state["item_codes"])))
    reused = dict(zip(captured["tokens"], map(tuple, captured["codes"])))
    assert saved == reused  # the same ID per item token


@pytest.mark.parametrize("model, overrides", [
    ("TIGER", {}),
    ("LETTER", {"n_levels": 3, "sinkhorn_epsilons": [0.0, 0.0, 0.003], "letter_cf_epochs": 1,
                "letter_cf_dim": 8, "letter_cf_inner_size": 16, "diversity_clusters": 3}),
])
def test_loaded_tokenizer_trains_the_same_generator_as_stage_one_in_process(workdir, monkeypatch,
                                                                         model, overrides):
    """Stage 1 draws from the global RNG; the generator must not depend on whether it ran.

    Same seed, same IDs: the run that trains its tokenizer and the run that loads it build
    the same generator, draw the same dropout masks and end with the same metrics. Stage 1's
    leftover gradients must be gone too, or stage 2's clipping over all parameters sees them.
    """
    config = tiny_config(workdir, workdir / "data", clip_grad_norm={"max_norm": 1.0}, **overrides)
    leftover = []
    real_start = TwoStageTrainer._start_generator_phase

    def check_grads(self):
        leftover.append([n for n, p in self.model.named_parameters() if p.grad is not None])
        real_start(self)

    monkeypatch.setattr(TwoStageTrainer, "_start_generator_phase", check_grads)
    first = run_recbole_bbq(model, "synth", config_dict=config)
    second = run_recbole_bbq(model, "synth", config_dict={
        **config, "tokenizer_checkpoint": first["tokenizer_checkpoint"]})
    assert leftover == [[], []]
    assert first["valid_history"] == second["valid_history"]
    assert first["test_result"] == second["test_result"]


def crash_on_second_epoch(monkeypatch):
    """Make the second generator epoch raise; returns the real ``_train_epoch`` to put back."""
    real_epoch = TwoStageTrainer._train_epoch
    calls = {"n": 0}

    def crash_on_second(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(TwoStageTrainer, "_train_epoch", crash_on_second)
    return real_epoch


def write_table(path, codes_of):
    path.write_text("item_id\tlevel_1\tlevel_2\n"
                    + "".join(f"{t}\t{a}\t{b}\n" for t, (a, b) in codes_of.items()))
    return path


def test_semantic_ids_file_replaces_stage_one_with_the_ids_it_holds(workdir, monkeypatch):
    """Another tool's IDs, in file order unlike the dataset's, with one colliding pair: the
    generator gets each item's row by token, and the pair gets the extra level."""
    config = tiny_config(workdir, workdir / "data")

    def must_not_train(*args, **kwargs):
        raise AssertionError("stage 1 ran although a semantic-ID table was given")

    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer", must_not_train)
    rng = np.random.default_rng(0)
    tokens = [f"i{i}" for i in rng.permutation(40)]
    table = {token: (n % 5, n // 5) for n, token in enumerate(tokens)}
    table[tokens[1]] = table[tokens[0]]  # two items share an ID
    path = write_table(workdir / "external-ids.tsv", table)
    captured = {}
    real_start = TwoStageTrainer._start_generator_phase

    def capture(self):
        captured["codes"] = self.model.item_codes.cpu().numpy().copy()
        captured["tokens"] = list(self.model.item_tokens)
        captured["level_sizes"] = self.model.level_sizes.tolist()
        real_start(self)

    monkeypatch.setattr(TwoStageTrainer, "_start_generator_phase", capture)
    result = main(["--model=TIGER", "--dataset=synth", f"--semantic_ids_file={path}",
                   *as_argv(config)])
    check_metrics(result)
    installed = dict(zip(captured["tokens"][1:], map(tuple, captured["codes"][1:])))
    assert {t: codes[:2] for t, codes in installed.items()} == table
    assert {installed[tokens[0]][2], installed[tokens[1]][2]} == {0, 1}
    assert captured["level_sizes"] == [5, 8, 2]
    ids = result["semantic_ids"]
    assert ids["semantic_ids_file"] == str(path) and ids["extra_level"]
    assert ids["collisions_before_extra_level"]["colliding_items"] == 2
    assert result["tokenizer_checkpoint"] is None


def test_semantic_ids_file_run_resumes_with_its_ids_and_no_tokenizer(workdir, monkeypatch):
    config = tiny_config(workdir, workdir / "data", epochs=2)
    table = write_table(workdir / "ids.tsv", {f"i{n}": (n % 4, n // 4) for n in range(40)})
    real_epoch = crash_on_second_epoch(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_recbole_bbq("TIGER", "synth", config_dict={**config, "semantic_ids_file": str(table)})
    latest = next((workdir / "saved").glob("*-latest.pth"))
    monkeypatch.setattr(TwoStageTrainer, "_train_epoch", real_epoch)
    result = run_recbole_bbq("TIGER", "synth", config_dict={
        **config, "semantic_ids_file": str(table), "resume_checkpoint": str(latest)})
    assert result["tokenizer_checkpoint"] is None  # no tokenizer file was ever written
    assert not list((workdir / "saved").glob("*-tokenizer.pth"))
    assert result["semantic_ids"]["semantic_ids_file"] == str(table)
    assert len(result["semantic_ids"]["semantic_ids_file_sha256"]) == 64
    assert [row["epoch"] for row in result["valid_history"]] == [0, 1]


@pytest.mark.parametrize("model, key, extra, record_of_6_dec", [
    ("TIGER", "tokenizer_checkpoint", {}, False),       # a loaded stage 1
    ("TIGER", "tokenizer_checkpoint", {}, True),        # ... its checksum kept apart, as on 6 Dec
    ("LETTER", "letter_cf_checkpoint", TINY_LETTER, False),  # the collaborative embeddings read
])
def test_a_resumed_run_keeps_the_checksum_of_the_input_file_it_loaded(
        workdir, monkeypatch, model, key, extra, record_of_6_dec):
    from recbole_bbq.fileio import file_sha256

    config = tiny_config(workdir, workdir / "data", epochs=2, **extra)
    # a finished run's stage 1 serves as either input (a LETTER one holds its embeddings)
    loaded = run_recbole_bbq(model, "synth", config_dict={**config, "epochs": 1})["tokenizer_checkpoint"]
    real_epoch = crash_on_second_epoch(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_recbole_bbq(model, "synth", config_dict={**config, key: loaded})
    latest = max((workdir / "saved").glob("*-latest.pth"), key=os.path.getmtime)
    if record_of_6_dec:  # the run record's layout before stage1_input_sha256 held it
        state = torch.load(latest, weights_only=True)
        record = state["run_record"]
        record["loaded_tokenizer_sha256"] = record.pop("stage1_input_sha256")[key]
        torch.save(state, latest)
    monkeypatch.setattr(TwoStageTrainer, "_train_epoch", real_epoch)
    # the resume restores the IDs from its checkpoint and reads neither input again
    monkeypatch.setattr(TwoStageTrainer, "load_tokenizer", lambda *a: pytest.fail("stage 1 reloaded"))
    monkeypatch.setattr(get_model(model), "tokenizer_init", lambda *a: pytest.fail("stage 1 rerun"))
    result = run_recbole_bbq(model, "synth", config_dict={
        **config, key: loaded, "resume_checkpoint": str(latest)})
    assert result[f"{key}_sha256"] == file_sha256(loaded)
    assert [row["epoch"] for row in result["valid_history"]] == [0, 1]


def test_a_stage_1_trained_alone_reports_the_collaborative_checkpoint_it_read(workdir):
    """What a data-parallel run adds to its record: its stage 1 runs alone, before the workers."""
    from recbole_bbq.fileio import file_sha256
    from recbole_bbq.quick_start import train_tokenizer_only

    config = tiny_config(workdir, workdir / "data", **TINY_LETTER)
    first = train_tokenizer_only("LETTER", "synth", config_dict=config, save=True)
    assert first["input_sha256"] == {}  # it trained its own SASRec
    cf = first["tokenizer_checkpoint"]
    second = train_tokenizer_only("LETTER", "synth", config_dict={**config, "letter_cf_checkpoint": cf})
    assert second["input_sha256"] == {"letter_cf_checkpoint": file_sha256(cf)}


@pytest.mark.parametrize("model", ["TIGER", "LETTER"])
def test_semantic_ids_file_needs_no_content_features(workdir, model):
    """A table replaces stage 1, so a dataset without feature files trains, and the checkpoint
    holds no RQ-VAE and reloads for serving."""
    make_synthetic_dataset(workdir / "bare", name="bare", modalities={})
    table = write_table(workdir / "ids.tsv", {f"i{n}": (n % 4, n // 4) for n in range(40)})
    config = tiny_config(workdir, workdir / "bare", epochs=1, semantic_ids_file=str(table))
    with pytest.raises(FeatureFileError, match="bare.feat_text.npz not found"):  # stage 1 needs them
        run_recbole_bbq(model, "bare", config_dict={**config, "semantic_ids_file": None})
    result = run_recbole_bbq(model, "bare", config_dict=config)
    check_metrics(result)
    saved = torch.load(result["checkpoint"], map_location="cpu", weights_only=False)
    assert not [k for k in saved["state_dict"] if k.startswith("rqvae.")]
    trained = load_trained(result["checkpoint"], data_path=str(workdir / "bare"))
    tokens = trained.dataset.field2id_token[trained.dataset.iid_field][1:]
    expected = [(int(t[1:]) % 4, int(t[1:]) // 4) for t in tokens]
    assert [tuple(row) for row in trained.model.item_codes[1:, :2].tolist()] == expected


def test_semantic_ids_file_trains_bbqrec_without_similarity_attention(workdir, monkeypatch):
    """BBQRec_S's generator needs only the IDs, so a table replaces its stage 1."""
    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer",
                        lambda *a, **k: pytest.fail("stage 1 ran although a table was given"))
    table = write_table(workdir / "ids.tsv", {f"i{n}": (n % 4, n // 4) for n in range(40)})
    config = tiny_config(workdir, workdir / "data", semantic_ids_file=str(table))
    result = run_recbole_bbq("BBQRec_S", "synth", config_dict=config)
    check_metrics(result)
    assert result["semantic_ids"]["utilisation"] == [1.0, 1.0]


def test_semantic_ids_file_errors_name_the_problem(workdir, capsys):
    config = tiny_config(workdir, workdir / "data")
    partial = workdir / "partial.tsv"
    partial.write_text("item_id\tlevel_1\n" + "".join(f"i{i}\t{i}\n" for i in range(38)))

    def error_of(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, *as_argv(config)])
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    err = error_of("--model=TIGER", "--dataset=synth", f"--semantic_ids_file={partial}")
    assert f"{partial} has no ID for 2 of the dataset's 40 items (first: ['i3" in err
    assert "'i38'" in err and "'i39'" in err
    err = error_of("--model=TIGER", "--dataset=synth", f"--semantic_ids_file={partial}",
                   "--tokenizer_checkpoint=saved/t.pth")
    assert "either tokenizer_checkpoint or semantic_ids_file" in err
    err = error_of("--model=BBQRec", "--dataset=synth", f"--semantic_ids_file={partial}")
    assert f"{partial}: BBQRec's generator also reads its trained tokenizer" in err
    err = error_of("--model=TIGER", "--dataset=synth", "--tokenizer_only",
                   f"--semantic_ids_file={partial}")
    assert "--tokenizer_only trains a stage 1, which semantic_ids_file replaces" in err


def test_tokenizer_for_another_item_set_is_rejected(workdir):
    config = tiny_config(workdir, workdir / "data")
    first = run_recbole_bbq("TIGER", "synth", config_dict=config)
    state = compat.load_checkpoint(first["tokenizer_checkpoint"])
    state["item_tokens"] = ["[PAD]"] + [f"other{i}" for i in range(40)]
    bad = workdir / "bad-tokenizer.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match="has no semantic ID for 40 items"):
        run_recbole_bbq("TIGER", "synth", config_dict={**config, "tokenizer_checkpoint": str(bad)})


def test_missing_item_features_name_the_file_and_items(workdir):
    path = feature_path(workdir / "data" / "synth", "synth", "text")
    write_feature_file(path, [f"i{i}" for i in range(38)], np.zeros((38, 16)))  # drops i38, i39
    with pytest.raises(FeatureFileError, match=r"synth.feat_text.npz.*2 of 40 items.*'i38'"):
        run_recbole_bbq("TIGER", "synth", config_dict=tiny_config(workdir, workdir / "data"))


def test_crash_mid_training_keeps_checkpoints_and_resume_finishes_the_run(workdir, monkeypatch):
    config = tiny_config(workdir, workdir / "data", epochs=3)
    real_epoch = crash_on_second_epoch(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_recbole_bbq("TIGER", "synth", config_dict=config)
    saved = sorted(os.listdir(workdir / "saved"))
    assert not [f for f in saved if f.endswith(".tmp")]
    assert any(f.endswith("-tokenizer.pth") for f in saved)  # stage 1 output survives
    latest = [f for f in saved if f.endswith("-latest.pth")]
    best = [f for f in saved if f.endswith(".pth") and "tokenizer" not in f and "latest" not in f]
    assert len(latest) == 1 and len(best) == 1
    state = compat.load_checkpoint(workdir / "saved" / latest[0])
    assert state["epoch"] == 0 and "item_codes" in state["state_dict"]
    assert latest[0] == best[0].replace(".pth", "-latest.pth")
    before = {f: (workdir / "saved" / f).read_bytes() for f in saved}

    # resuming continues at epoch 1 with the saved IDs (no stage 1) and tests the best model
    monkeypatch.setattr(TwoStageTrainer, "_train_epoch", real_epoch)
    monkeypatch.setattr(TwoStageTrainer, "fit_tokenizer", lambda *a, **k: pytest.fail("stage 1 ran"))
    result = run_recbole_bbq(
        "TIGER", "synth",
        config_dict={**config, "resume_checkpoint": str(workdir / "saved" / latest[0])},
    )
    check_metrics(result)
    # the resumed run writes under its own name and leaves the interrupted run's files alone
    assert os.path.basename(result["checkpoint"]) not in before
    assert {f: (workdir / "saved" / f).read_bytes() for f in saved} == before
    # the results file reports the whole run, epoch 0 and stage 1 from before the crash too
    assert result["epochs_trained"] == 3
    assert [row["epoch"] for row in result["valid_history"]] == [0, 1, 2]
    assert result["stage_times_s"]["tokenizer"] > 0
    assert result["semantic_ids"]["collisions_before_extra_level"]["n_items"] > 0
    assert len(result["tokenizer_history"]) == config["tokenizer_epochs"]
    assert result["train_time_s"] >= sum(result["stage_times_s"].values()) * 0.99
    assert result["resumed_from"].endswith(latest[0])


def test_plugin_property_files_and_overrides(workdir):
    config = Config("TIGER", "synth", config_dict={"data_path": str(workdir / "data")})
    assert config["beam_size"] == 20 and config["n_levels"] == 3  # properties/model/TIGER.yaml
    assert config["MAX_ITEM_LIST_LENGTH"] == 20 and config["valid_metric"] == "NDCG@10"
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"}
    user_file = workdir / "mine.yaml"
    user_file.write_text("beam_size: 30\nn_levels: 4\n")
    config = Config("TIGER", "synth", config_file_list=[str(user_file)],
                    config_dict={"data_path": str(workdir / "data"), "n_levels": 2})
    assert config["beam_size"] == 30 and config["n_levels"] == 2  # dict beats file
    # RecBole's own models get the shared protocol through the same Config
    sasrec = Config("SASRec", "synth", config_dict={"data_path": str(workdir / "data")})
    assert sasrec["topk"] == [5, 10] and sasrec["hidden_size"] == 64


def test_command_line_values_are_typed():
    model, dataset, files, overrides = parse_args(
        ["--model=TIGER", "--dataset=Beauty", "--epochs=3", "--learning_rate=1e-3",
         "--topk=[5,10]", "--kmeans_init=False", "--tokenizer_checkpoint=saved/t.pth"]
    )
    assert (model, dataset, files) == ("TIGER", "Beauty", [])
    assert overrides == {"epochs": 3, "learning_rate": 1e-3, "topk": [5, 10],
                         "kmeans_init": False, "tokenizer_checkpoint": "saved/t.pth"}


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'TIGR'"):
        Config("TIGR", "synth")


def test_packaged_properties_cover_every_plugin_model():
    """properties/ ships as recbole_bbq.properties, so a wheel install finds it too."""
    from importlib.resources import files

    from recbole_bbq import model

    root = files("recbole_bbq.properties")
    assert (root / "overall.yaml").is_file()
    for name in model.__all__:
        assert (root / "model" / f"{name}.yaml").is_file(), name


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux-only reset")
def test_peak_memory_is_per_run_not_per_process():
    """The driver runs many models in one process: an earlier run's peak must not leak."""
    from recbole_bbq.quick_start import _peak_rss_mb, _reset_peak_memory

    _reset_peak_memory()
    before = _peak_rss_mb()
    ballast = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    ballast[::512] += 1
    with_ballast = _peak_rss_mb()
    del ballast
    _reset_peak_memory()
    assert with_ballast > before + 48
    assert _peak_rss_mb() < with_ballast - 48
