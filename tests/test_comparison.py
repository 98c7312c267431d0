"""The side-by-side driver: outputs, cache, seeds and significance, budgets and presets."""
import csv
import json
import os

import numpy as np
import pytest
import yaml
from scipy.stats import ttest_rel

from conftest import TINY_LETTER, make_synthetic_dataset, tiny_config
from recbole_bbq import quick_start
from recbole_bbq.comparison import driver
from recbole_bbq.cli import build_comparison_parser, main, parse_comparison_args
from recbole_bbq.fileio import file_sha256


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    config = tiny_config(tmp_path, tmp_path / "data", modalities=["text"], epochs=2)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def bench(*extra, out="bench"):
    return main(["--dataset=synth", "--config_files=tiny.yaml", f"--out={out}", *extra])


def refused(capsys, *extra):
    """The driver's stderr for a user error, which exits with status 2 and one message."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        bench(*extra)
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_two_models_write_table_csv_json_and_plots_then_rerun_from_cache(workdir, monkeypatch, capsys):
    report = bench("--models=SASRec,TIGER")
    printed = capsys.readouterr().out
    assert "| Metric | SASRec | TIGER |" in printed
    assert "Written: bench/table.md, results.csv, results.json, metrics.png" in printed
    assert f"checkpoints in {workdir / 'saved'}" in printed
    assert len(report["trained"]) == 2 and not report["cached"]
    assert report["seeds"] == [2020]  # no --seeds: the one seed the configuration gives
    table = (workdir / "bench" / "table.md").read_text()
    assert report["table"] == table and table.rstrip("\n") in printed
    assert "| Metric | SASRec | TIGER | Improv. | p-value |" in table
    assert table.count("**") == 2 * 4  # one bold cell per metric row
    with open(workdir / "bench" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["SASRec", "TIGER"]
    assert {"test_recall@5", "valid_ndcg@10", "peak_rss_mb", "time_tokenizer_s", "config"} <= set(rows[1])
    assert json.loads(rows[1]["config"])["model"] == "TIGER"
    saved = json.loads((workdir / "bench" / "results.json").read_text())
    assert "table" not in saved  # table.md holds it
    assert saved["runs"][1]["result"]["config"]["codebook_dim"] == 8
    assert saved["runs"][1]["result"]["valid_history"]
    for png in ("metrics.png", "valid_curves.png"):
        assert (workdir / "bench" / png).read_bytes()[:4] == b"\x89PNG"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(quick_start, "run_recbole_bbq", no_training)
    again = bench("--models=SASRec,TIGER")
    assert not again["trained"] and len(again["cached"]) == 2
    assert again["summary"] == report["summary"]


def test_a_changed_override_or_new_seed_trains_only_what_is_missing(workdir):
    first = bench("--models=SASRec", "--seeds=1")
    assert len(first["trained"]) == 1
    more = bench("--models=SASRec", "--seeds=1,2")
    assert len(more["trained"]) == 1 and len(more["cached"]) == 1
    changed = bench("--models=SASRec", "--seeds=1", "--learning_rate=0.01")
    assert len(changed["trained"]) == 1


def test_finished_runs_are_adopted_only_when_their_config_matches(workdir, monkeypatch, capsys):
    single = quick_start.run_recbole_bbq("SASRec", "synth", config_file_list=["tiny.yaml"],
                                         config_dict={"seed": 3})
    assert "learning_rate: ran 0.001, expected 0.01" in refused(
        capsys, "--models=SASRec", "--seeds=3", "--learning_rate=0.01", f"--adopt={single['results_file']}")
    monkeypatch.setattr(quick_start, "run_recbole_bbq", None)  # nothing may train
    report = bench("--models=SASRec", "--seeds=3", f"--adopt={single['results_file']}")
    assert report["adopted"] == [single["results_file"]] and not report["trained"]
    assert report["runs"][0]["result"]["test_result"] == single["test_result"]


def test_no_training_rebuilds_from_records_and_names_a_missing_run_instead_of_training(
        workdir, monkeypatch, capsys):
    single = quick_start.run_recbole_bbq("SASRec", "synth", config_file_list=["tiny.yaml"],
                                         config_dict={"seed": 3})

    def no_training(*args, **kwargs):
        raise AssertionError("--no_training trained a run")

    monkeypatch.setattr(quick_start, "run_recbole_bbq", no_training)
    report = bench("--models=SASRec", "--seeds=3", "--no_training",
                   f"--adopt={single['results_file']}")
    assert report["adopted"] == [single["results_file"]] and not report["trained"]
    with pytest.raises(SystemExit) as stop:  # seed 4 has no record
        bench("--models=SASRec", "--seeds=3,4", "--no_training",
              f"--adopt={single['results_file']}", out="bench2")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--no_training: no adopted or cached run of SASRec at seed 4" in err


def test_a_model_config_file_applies_to_its_model_only_and_is_checked_on_adoption(workdir, monkeypatch, capsys):
    (workdir / "sasrec.yaml").write_text("learning_rate: 0.005\n")
    single = quick_start.run_recbole_bbq("SASRec", "synth", config_file_list=["tiny.yaml", "sasrec.yaml"],
                                         config_dict={"seed": 3})
    assert "learning_rate: ran 0.005, expected 0.001" in refused(
        capsys, "--models=SASRec", "--seeds=3", f"--adopt={single['results_file']}")
    monkeypatch.setattr(quick_start, "run_recbole_bbq", None)  # nothing may train
    report = bench("--models=SASRec", "--seeds=3", "--model_config", "SASRec:sasrec.yaml",
                   f"--adopt={single['results_file']}")
    assert report["adopted"] == [single["results_file"]] and not report["trained"]
    assert report["model_config_files"] == {"SASRec": ["sasrec.yaml"]}
    assert "per model: {'SASRec': ['sasrec.yaml']}" in (workdir / "bench" / "table.md").read_text()


def test_an_adopted_run_older_than_a_config_key_is_taken_and_the_key_listed(workdir, monkeypatch):
    single = quick_start.run_recbole_bbq("SASRec", "synth", config_file_list=["tiny.yaml"],
                                         config_dict={"seed": 3})
    path = single["results_file"]
    with open(path) as fh:
        result = json.load(fh)
    del result["config"]["amp_dtype"]  # as a run made before amp_dtype existed
    with open(path, "w") as fh:
        json.dump(result, fh)
    monkeypatch.setattr(quick_start, "run_recbole_bbq", None)
    report = bench("--models=SASRec", "--seeds=3", f"--adopt={path}")
    assert report["adopted"] == [path] and report["keys_added_since"] == {path: ["amp_dtype"]}
    assert f"`{path}`: amp_dtype" in (workdir / "bench" / "table.md").read_text()


def test_an_adopted_run_older_than_a_key_is_held_to_the_behaviour_the_key_stands_for(
        workdir, monkeypatch, capsys):
    # a run made before eval_amp_dtype existed evaluated in float32: it adopts where the
    # benchmark evaluates in float32 too, and is refused where it would evaluate in bfloat16
    single = quick_start.run_recbole_bbq("SASRec", "synth", config_file_list=["tiny.yaml"],
                                         config_dict={"seed": 3})
    path = single["results_file"]
    with open(path) as fh:
        result = json.load(fh)
    del result["config"]["eval_amp_dtype"]
    with open(path, "w") as fh:
        json.dump(result, fh)
    monkeypatch.setattr(quick_start, "run_recbole_bbq", None)
    assert "eval_amp_dtype: ran None (before the key existed), expected 'bfloat16'" in refused(
        capsys, "--models=SASRec", "--seeds=3", "--eval_amp_dtype=bfloat16", f"--adopt={path}")
    report = bench("--models=SASRec", "--seeds=3", f"--adopt={path}")
    assert report["adopted"] == [path] and report["keys_added_since"] == {path: ["eval_amp_dtype"]}


def test_an_adopted_run_may_read_its_semantic_id_table_from_another_path(workdir, monkeypatch, capsys):
    # the record keeps the table's SHA-256: the same table moved is the same run; another
    # table, under the run's own path or another, is not
    table = workdir / "ids.tsv"
    table.write_text("item_id\tlevel_1\n" + "".join(f"i{n}\t{n}\n" for n in range(40)))
    single = quick_start.run_recbole_bbq("TIGER", "synth", config_file_list=["tiny.yaml"],
                                         config_dict={"seed": 3, "semantic_ids_file": str(table)})
    path = single["results_file"]
    assert "tokenizer_checkpoint_sha256" not in single  # no stage 1 ran or was loaded
    moved = workdir / "moved.tsv"
    moved.write_bytes(table.read_bytes())
    other = workdir / "other.tsv"
    other.write_text(table.read_text().replace("i0\t0", "i0\t1"))  # two items share an ID
    monkeypatch.setattr(quick_start, "run_recbole_bbq", None)
    assert f"semantic_ids_file: ran {str(table)!r}, expected {str(other)!r}" in refused(
        capsys, "--models=TIGER", "--seeds=3", "--set", f"TIGER:semantic_ids_file={other}",
        f"--adopt={path}")
    table.write_bytes(other.read_bytes())
    assert f"semantic_ids_file {table} is not the file the run read" in refused(
        capsys, "--models=TIGER", "--seeds=3", "--set", f"TIGER:semantic_ids_file={table}",
        f"--adopt={path}")
    assert f"semantic_ids_file {workdir / 'gone.tsv'} does not exist" in refused(
        capsys, "--models=TIGER", "--seeds=3", "--set", f"TIGER:semantic_ids_file={workdir / 'gone.tsv'}",
        f"--adopt={path}")
    report = bench("--models=TIGER", "--seeds=3", "--set", f"TIGER:semantic_ids_file={moved}",
                   f"--adopt={path}")
    assert report["adopted"] == [path] and not report["trained"]


def test_the_run_cache_keys_an_input_file_by_its_contents_as_well_as_its_path(workdir):
    table = workdir / "ids.tsv"
    table.write_text("item_id\tlevel_1\n" + "".join(f"i{n}\t{n}\n" for n in range(40)))
    args = ("--models=TIGER", "--seeds=3", "--set", f"TIGER:semantic_ids_file={table}")
    assert len(bench(*args)["trained"]) == 1
    assert len(bench(*args)["cached"]) == 1
    table.write_text(table.read_text().replace("i0\t0", "i0\t1"))  # same path, other IDs
    assert len(bench(*args)["trained"]) == 1


def test_an_adopted_run_is_checked_against_the_stage_1_it_loaded_by_content(workdir, capsys, monkeypatch):
    first = quick_start.run_recbole_bbq("TIGER", "synth", config_file_list=["tiny.yaml"],
                                        config_dict={"seed": 3})
    assert "tokenizer_checkpoint_sha256" not in first  # it trained its own stage 1
    stage1 = workdir / "stage1.pth"
    stage1.write_bytes(open(first["tokenizer_checkpoint"], "rb").read())
    run = quick_start.run_recbole_bbq("TIGER", "synth", config_file_list=["tiny.yaml"],
                                      config_dict={"seed": 3, "tokenizer_checkpoint": str(stage1)})
    assert run["tokenizer_checkpoint_sha256"] == file_sha256(stage1)
    moved = workdir / "moved.pth"
    moved.write_bytes(stage1.read_bytes())
    stage1.write_bytes(stage1.read_bytes() + b"\0")  # another file under the run's own path
    assert f"tokenizer_checkpoint {stage1} is not the file the run read" in refused(
        capsys, "--models=TIGER", "--seeds=3", "--set", f"TIGER:tokenizer_checkpoint={stage1}",
        f"--adopt={run['results_file']}")
    from recbole_bbq.comparison import runs

    reads = []
    monkeypatch.setattr(runs, "file_sha256", lambda p: reads.append(str(p)) or file_sha256(p))
    report = bench("--models=TIGER", "--seeds=3", "--set", f"TIGER:tokenizer_checkpoint={moved}",
                   f"--adopt={run['results_file']}", "--no_training")
    assert report["adopted"] == [run["results_file"]] and not report["trained"]
    # checked by content on adoption, then keyed in the run cache twice: one read for all
    assert reads.count(str(moved)) == 1, reads


def test_an_adopted_run_whose_stage_1_is_not_on_this_machine_is_taken_on_its_record(workdir, capsys):
    # a later session on a new machine rebuilds the tables from committed records while the
    # saved stage 1s stayed behind: the run's own path is taken on the recorded SHA-256 and
    # named in the table; a missing file under another path is still refused
    first = quick_start.run_recbole_bbq("TIGER", "synth", config_file_list=["tiny.yaml"],
                                        config_dict={"seed": 3})
    stage1 = workdir / "stage1.pth"
    stage1.write_bytes(open(first["tokenizer_checkpoint"], "rb").read())
    run = quick_start.run_recbole_bbq("TIGER", "synth", config_file_list=["tiny.yaml"],
                                      config_dict={"seed": 3, "tokenizer_checkpoint": str(stage1)})
    recorded = run["tokenizer_checkpoint_sha256"]
    present = bench("--models=TIGER", "--seeds=3", "--set", f"TIGER:tokenizer_checkpoint={stage1}",
                    f"--adopt={run['results_file']}", "--no_training", out="present")
    stage1.unlink()
    gone = workdir / "elsewhere.pth"
    assert f"tokenizer_checkpoint {gone} does not exist and the run read another path" in refused(
        capsys, "--models=TIGER", "--seeds=3", "--set", f"TIGER:tokenizer_checkpoint={gone}",
        f"--adopt={run['results_file']}")
    report = bench("--models=TIGER", "--seeds=3", "--set", f"TIGER:tokenizer_checkpoint={stage1}",
                   f"--adopt={run['results_file']}", "--no_training")
    assert report["adopted"] == [run["results_file"]] and not report["trained"]
    taken = report["inputs_taken_on_record"][run["results_file"]]
    assert taken == [f"tokenizer_checkpoint {stage1} (SHA-256 {recorded[:12]}…)"]
    assert f"tokenizer_checkpoint {stage1} (SHA-256 {recorded[:12]}…)" in report["table"]
    # the record's SHA-256 stands for the absent file in the cache key: the same key as where
    # the file is present
    assert [os.path.basename(p) for p in report["cached"]] == [os.path.basename(p) for p in present["cached"]]
    # a second record naming another file under the same absent path is refused
    with open(run["results_file"]) as fh:
        other = json.load(fh)
    other["seed"] = other["config"]["seed"] = 4
    other["tokenizer_checkpoint_sha256"] = "0" * 64
    other_path = workdir / "other_run.json"
    other_path.write_text(json.dumps(other))
    assert "another adopted run read a different file under that path" in refused(
        capsys, "--models=TIGER", "--seeds=3,4", "--set", f"TIGER:tokenizer_checkpoint={stage1}",
        f"--adopt={run['results_file']},{other_path}", "--no_training")


def test_a_seed_scoped_override_applies_to_that_seed_only_and_wins_over_the_model_scope(
        workdir, capsys):
    from recbole_bbq.comparison.presets import RunSpec
    from recbole_bbq.comparison.runs import Benchmark

    args, files, common, per_model = parse_comparison_args(
        ["--models=TIGER", "--dataset=synth", "--seeds=3,4", "--set", "TIGER:epochs=5",
         "--set", "TIGER@4:tokenizer_checkpoint=saved/seed4.pth", "--set", "TIGER@4:epochs=6"])
    benchmark = Benchmark("synth", "bench", files, common, per_model, [3, 4])
    at3, at4 = (benchmark.overrides_for(RunSpec("TIGER", "TIGER"), seed) for seed in (3, 4))
    assert at3["epochs"] == 5 and "tokenizer_checkpoint" not in at3
    assert at4["epochs"] == 6 and at4["tokenizer_checkpoint"] == "saved/seed4.pth"
    with pytest.raises(SystemExit):
        parse_comparison_args(["--models=TIGER", "--dataset=synth", "--set", "TIGER@x:epochs=5"])
    assert "a seed scope is MODEL@SEED with an integer seed" in capsys.readouterr().err


def test_model_config_names_a_missing_file(workdir, capsys):
    with pytest.raises(SystemExit) as exc:
        bench("--models=SASRec", "--model_config", "SASRec:nope.yaml")
    assert exc.value.code == 2
    assert "config file nope.yaml does not exist" in capsys.readouterr().err


def test_seeds_give_mean_std_and_a_paired_t_test_against_the_best_baseline():
    def record(label, seed, value):
        return {"label": label, "seed": seed,
                "result": {"test_result": {m: value for m in driver.METRICS}}}

    a, b, c = [0.10, 0.12, 0.11], [0.08, 0.09, 0.10], [0.01, 0.02, 0.01]
    records = ([record("Target", s, v) for s, v in enumerate(a)]
               + [record("Strong", s, v) for s, v in enumerate(b)]
               + [record("Weak", s, v) for s, v in enumerate(c)])
    summary = driver.summarise(records, "Target")
    cmp = summary["comparison"]["ndcg@10"]
    assert cmp["best_other"] == "Strong"
    assert cmp["improvement"] == pytest.approx(np.mean(a) / np.mean(b) - 1)
    assert cmp["p_value"] == pytest.approx(ttest_rel(a, b).pvalue)
    assert summary["stats"]["Target"]["recall@5"]["std"] == pytest.approx(np.std(a, ddof=1))
    table = driver.comparison_table(summary)
    assert "**0.1100 ± 0.0100**" in table


def test_budget_caps_epochs_and_wall_time_and_is_recorded(workdir):
    capped = bench("--models=TIGER", "--budget_epochs=1", "--budget_tokenizer_epochs=1")
    run = capped["runs"][0]
    assert run["overrides"]["epochs"] == 1 and run["overrides"]["tokenizer_epochs"] == 1
    assert run["result"]["epochs_trained"] == 1
    assert capped["budget"] == {"epochs": 1, "tokenizer_epochs": 1}
    assert "epochs=1" in (workdir / "bench" / "table.md").read_text()
    timed = bench("--models=TIGER", "--budget_minutes=0.00001", "--epochs=5", out="timed")
    result = timed["runs"][0]["result"]
    assert result["stopped_by_budget"] and result["epochs_trained"] == 1
    assert result["tokenizer_stopped_after_epochs"] == 1
    assert set(result["test_result"]) == set(driver.METRICS)


def test_collision_preset_trains_only_tokenizers_and_writes_its_table(workdir):
    report = bench("--preset=table5", "--models=TIGER", "--levels=1,2")
    assert [r["result"]["n_levels"] for r in report["runs"]] == [1, 2]
    assert all("test_result" not in r["result"] for r in report["runs"])
    table = (workdir / "bench" / "table.md").read_text()
    assert "| Tokenizer | L=1 | L=2 |" in table
    counts = [r["result"]["stats"]["collisions_before_extra_level"]["colliding_items"]
              for r in report["runs"]]
    assert f"| TIGER | {counts[0]} | {counts[1]} |" in table
    # 40 items in 8 codes at L=1: at most 7 can have a code to themselves
    assert counts[0] >= 33 and counts[0] >= counts[1]


def test_speed_preset_times_single_users_and_batches(workdir):
    report = bench("--preset=table6", "--models=TIGER", "--beams=10,20", "--speed_users=5")
    result = report["runs"][-1]["result"]
    assert set(result["per_user_s"]) == {"10", "20"} and result["n_users"] == 5
    assert all(v > 0 for v in result["batched_users_per_s"].values())
    assert "s/user, beam 10" in (workdir / "bench" / "table.md").read_text()


def test_sweep_preset_varies_one_key_at_a_time(workdir, monkeypatch):
    monkeypatch.setitem(driver.PRESETS["figure3"], "sweeps", {"n_levels": [1, 2]})
    report = bench("--preset=figure3", "--models=TIGER")
    assert [r["overrides"]["n_levels"] for r in report["runs"]] == [1, 2]
    assert [r["result"]["config"]["n_levels"] for r in report["runs"]] == [1, 2]
    assert (workdir / "bench" / "sweeps.png").exists()
    assert "TIGER[n_levels=2]" in (workdir / "bench" / "table.md").read_text()


def test_missing_models_and_preset_is_a_clear_error(workdir, capsys):
    with pytest.raises(SystemExit):
        parse_comparison_args(["--dataset=synth"])
    assert "give --models=A,B,... or --preset=NAME" in capsys.readouterr().err


def test_the_top_level_help_names_every_side_by_side_option(capsys):
    from recbole_bbq.cli import build_parser

    text = build_parser().format_help()
    options = [o for action in build_comparison_parser()._actions for o in action.option_strings
               if o.startswith("--") and o != "--help"]
    assert options and [o for o in options if o not in text] == []


def test_a_comparison_request_refuses_what_would_fail_later_or_silently():
    from recbole_bbq.comparison.driver import ComparisonRequest
    from recbole_bbq.config import ConfigError

    with pytest.raises(ConfigError, match="models or a preset"):
        ComparisonRequest(dataset="synth")
    with pytest.raises(ConfigError, match="unknown preset 'tabel2'"):
        ComparisonRequest(dataset="synth", preset="tabel2")
    with pytest.raises(ConfigError, match="adopt is a list"):
        ComparisonRequest(dataset="synth", models=["SASRec"], adopt="a.json,b.json")
    assert ComparisonRequest(dataset="synth", preset="table2").models is None


def test_an_adopted_letter_run_is_checked_against_its_collaborative_checkpoint_by_content(
        workdir, capsys):
    (workdir / "letter.yaml").write_text(yaml.safe_dump(TINY_LETTER))
    files = ["tiny.yaml", "letter.yaml"]
    first = quick_start.run_recbole_bbq("LETTER", "synth", config_file_list=files,
                                        config_dict={"seed": 3})
    assert "letter_cf_checkpoint_sha256" not in first  # it trained its own SASRec
    cf = workdir / "cf.pth"  # a LETTER stage 1 holds the collaborative embeddings it used
    cf.write_bytes(open(first["tokenizer_checkpoint"], "rb").read())
    run = quick_start.run_recbole_bbq("LETTER", "synth", config_file_list=files,
                                      config_dict={"seed": 3, "letter_cf_checkpoint": str(cf)})
    assert run["letter_cf_checkpoint_sha256"] == file_sha256(cf)
    moved = workdir / "moved.pth"
    moved.write_bytes(cf.read_bytes())
    cf.write_bytes(cf.read_bytes() + b"\0")  # another file under the run's own path
    common = ["--dataset=synth", "--config_files=tiny.yaml,letter.yaml", "--out=bench",
              "--models=LETTER", "--seeds=3", f"--adopt={run['results_file']}", "--no_training"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*common, "--set", f"LETTER:letter_cf_checkpoint={cf}"])
    assert (f"letter_cf_checkpoint {cf} is not the file the run read"
            in capsys.readouterr().err)
    report = main([*common, "--set", f"LETTER:letter_cf_checkpoint={moved}"])
    assert report["adopted"] == [run["results_file"]] and not report["trained"]
