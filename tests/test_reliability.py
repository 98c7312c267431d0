"""Bad input is named, never silently used (docs/RELIABILITY.md lists every case)."""
import numpy as np
import pytest

from recbole_bbq.data.feature_store import FeatureFileError, read_feature_file


def _raw_feature_file(path, item_ids, features):
    """A feature file written without the writer's checks, as a hand-made file would be."""
    np.savez(path, item_id=np.asarray(item_ids), feature=np.asarray(features, np.float32),
             present=np.ones(len(item_ids), bool))
    return path


@pytest.mark.parametrize("item_ids, features, message", [
    (["a", "b"], [[0.0, np.nan], [1.0, 2.0]], r"non-finite .* first \['a'\]"),
    (["a", "b"], [[0.0, 1.0], [np.inf, 2.0]], r"non-finite .* first \['b'\]"),
    (["a", "b"], np.zeros((2, 0)), "width 0"),
    (["a", "a", "b"], np.zeros((3, 2)), r"duplicate item ids .*\['a'\]"),
])
def test_bad_feature_files_are_refused_on_read_naming_file_and_items(tmp_path, item_ids,
                                                                     features, message):
    path = _raw_feature_file(tmp_path / "x.feat_text.npz", item_ids, features)
    with pytest.raises(FeatureFileError, match=r"x\.feat_text\.npz.*" + message):
        read_feature_file(path)


# ---------------------------------------------------------------------- configuration
from conftest import tiny_config  # noqa: E402
from recbole_bbq.config import Config, ConfigError  # noqa: E402
from recbole_bbq.cli import main  # noqa: E402


@pytest.fixture
def data_path(tmp_path):
    from conftest import make_synthetic_dataset

    make_synthetic_dataset(tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("override, message", [
    ({"tokenizer_epoch": 3}, r"unknown configuration key 'tokenizer_epoch'.*did you mean 'tokenizer_epochs'"),
    ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
    ({"tokenizer_epochs": -1}, r"tokenizer_epochs must be an integer >= 0"),
    ({"learning_rate": 0}, r"learning_rate must be a number > 0"),
    ({"nproc": "two"}, r"nproc must be an integer >= 1, got 'two'"),
    ({"modalities": 3}, r"modalities must be a list of modality names"),
    ({"keep_freed_memory": "yes"}, r"keep_freed_memory must be True or False, got 'yes'"),
    ({"tie_embeddings": "ture"}, r"tie_embeddings must be True or False, got 'ture'"),
    ({"output_bias": 0}, r"output_bias must be True or False, got 0"),
    ({"final_dropout": "no"}, r"final_dropout must be True or False, got 'no'"),
    ({"input_norm": 1}, r"input_norm must be True or False, got 1"),
    ({"start_every_level": "yes"}, r"start_every_level must be True or False, got 'yes'"),
    ({"start_every_level": True}, r"start_every_level: True needs decoder_start: last_item"),
    ({"decoder_start": "last"}, r"decoder_start must be bos or last_item, got 'last'"),
    ({"n_decoder_layers": 0}, r"n_decoder_layers: 0 needs decoder_start: last_item"),
    ({"first_level_readout": "start"}, r"first_level_readout: start needs decoder_start: last_item"),
    ({"first_level_readout": "encoder"}, r"first_level_readout must be decoder or start, got 'encoder'"),
    ({"history_tokens": "items"}, r"history_tokens must be levels or item, got 'items'"),
    ({"first_level_embeddings": "item"}, r"first_level_embeddings must be tokens or items, got 'item'"),
    ({"first_level_embeddings": "items"}, r"first_level_embeddings: items .* needs tie_embeddings: True"),
    ({"n_decoder_layers": -1}, r"n_decoder_layers must be an integer >= 0, got -1"),
    ({"weight_decay_scope": "matrix"}, r"weight_decay_scope must be all or matrices or hidden, got 'matrix'"),
])
def test_invalid_settings_are_refused_before_any_work(tmp_path, data_path, override, message):
    with pytest.raises(ConfigError, match=message):
        Config("TIGER", "synth", config_dict={**tiny_config(tmp_path, data_path), **override})


def test_no_decoder_layers_are_accepted_with_the_last_item_start(tmp_path, data_path):
    config = Config("TIGER", "synth", config_dict={
        **tiny_config(tmp_path, data_path), "n_decoder_layers": 0, "decoder_start": "last_item"})
    assert config["n_decoder_layers"] == 0


def test_extra_config_keys_opt_out_and_bare_modality_name(tmp_path, data_path):
    config = Config("TIGER", "synth", config_dict={
        **tiny_config(tmp_path, data_path), "my_hook": 1, "extra_config_keys": ["my_hook"],
        "modalities": "text"})
    assert config["my_hook"] == 1 and config["modalities"] == ["text"]


def test_yaml_errors_name_the_file(tmp_path, data_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1, 2\n")
    with pytest.raises(ConfigError, match=r"config file .*bad\.yaml is not valid YAML"):
        Config("TIGER", "synth", config_file_list=[str(bad)],
               config_dict=tiny_config(tmp_path, data_path))
    typo = tmp_path / "typo.yaml"
    typo.write_text("tokenizer_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"'tokenizer_epoch' in config file .*typo\.yaml"):
        Config("TIGER", "synth", config_file_list=[str(typo)],
               config_dict=tiny_config(tmp_path, data_path))


def test_user_errors_exit_2_with_one_message(tmp_path, data_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [f"--data_path={data_path}", "--use_gpu=False"]
    for argv, message in ((["--model=TIGR", "--dataset=synth"], "unknown model 'TIGR'"),
                          (["--model=TIGER", "--dataset=synth", "--tokenizer_epoch=3"],
                           "did you mean 'tokenizer_epochs'"),
                          (["--model=TIGER", "--dataset=synth",
                            f"--resume_checkpoint={tmp_path / 'nope.pth'}", "--epochs=1",
                            "--tokenizer_epochs=1"], "nope.pth does not exist")):
        with pytest.raises(SystemExit) as stop:
            main(argv + args)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_an_unprepared_dataset_names_the_prepare_commands(tmp_path, data_path):
    with pytest.raises(ConfigError, match=r"(?s)dataset .Toys. is not prepared: .*Toys\.inter not "
                                          r"found.*dataset_prep p5 .*--name Toys"):
        Config("TIGER", "Toys", config_dict=tiny_config(tmp_path, data_path))


def test_temporaries_of_killed_writes_are_cleaned_but_live_ones_kept(tmp_path):
    import os
    import time

    from recbole_bbq.fileio import remove_stale_temporaries

    old, fresh, other = (tmp_path / ".a.pth.x1.tmp", tmp_path / ".b.pth.x2.tmp", tmp_path / "c.tmp")
    for path in (old, fresh, other):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not old.exists() and fresh.exists() and other.exists()


def test_a_record_older_than_a_key_is_compared_on_the_behaviour_the_key_stands_for():
    from recbole_bbq.fileio import config_differences

    current = {"lr": 0.1, "tie_embeddings": True, "compile_backend": "inductor"}
    # made before both keys: tying did not exist (so it ran untied); the backend only
    # changes speed, so it is listed as newer and never a difference
    assert config_differences({"lr": 0.1}, current) == (["tie_embeddings"],
                                                        ["compile_backend", "tie_embeddings"])
    assert config_differences({"lr": 0.1}, {**current, "tie_embeddings": False}) == (
        [], ["compile_backend", "tie_embeddings"])
    assert config_differences({"lr": 0.2, "tie_embeddings": True}, current) == (["lr"], ["compile_backend"])
    assert config_differences({"lr": 0.2}, current, ignore=lambda k: k != "compile_backend") == (
        [], ["compile_backend"])


def test_two_runs_started_at_once_keep_their_own_files(tmp_path, data_path):
    """Two processes, same model, dataset and second: neither overwrites the other."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    config = tiny_config(tmp_path, data_path, epochs=1)
    args = [sys.executable, str(root / "run_recbole_bbq.py"), "--model=SASRec", "--dataset=synth"]
    args += [f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in config.items()]
    env = {**os.environ, "PYTHONPATH": str(root)}
    runs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err.decode()[-2000:]
    results = sorted((tmp_path / "results").glob("SASRec-synth-*.json"))
    assert len(results) == 2
    checkpoints = {json.loads(p.read_text())["checkpoint"] for p in results}
    assert len(checkpoints) == 2 and all(os.path.isfile(c) for c in checkpoints)


def test_a_run_survives_losing_recboles_directory_race(tmp_path, data_path, monkeypatch):
    """RecBole makes ./log/<model> and checkpoint_dir by check-then-create; a run that loses
    that race to a second run started in the same second must not die (one did, in CI)."""
    import os

    import recbole.trainer.trainer
    import recbole.utils.logger

    from recbole_bbq.quick_start import run_recbole_bbq

    def lose_the_race(path):  # the other process creates it between the check and makedirs
        if not os.path.exists(path):
            raise FileExistsError(path)

    monkeypatch.setattr(recbole.trainer.trainer, "ensure_dir", lose_the_race)
    monkeypatch.setattr(recbole.utils.logger, "ensure_dir", lose_the_race)
    monkeypatch.chdir(tmp_path)
    os.makedirs("log")  # the shared ./log exists once any run has happened here
    result = run_recbole_bbq("SASRec", "synth", config_dict=tiny_config(tmp_path, data_path,
                                                                        epochs=1))
    assert os.path.isfile(result["checkpoint"])
