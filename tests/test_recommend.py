"""Using a trained model: top-k for users and for a history, and the semantic-ID export."""
import pytest

from conftest import make_synthetic_dataset, tiny_config
from recbole_bbq.config import ConfigError
from recbole_bbq.cli import main
from recbole_bbq.quick_start import run_recbole_bbq
from recbole_bbq.recommend import load_trained, recommend


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path


@pytest.mark.parametrize("model", ["TIGER", "SASRec"])
def test_recommend_for_users_and_histories(workdir, model):
    result = run_recbole_bbq(model, "synth", config_dict=tiny_config(workdir, workdir / "data",
                                                                     epochs=1))
    trained = load_trained(result["checkpoint"])
    (for_user,) = recommend(trained, users=["u3"], topk=5)
    assert for_user["user"] == "u3" and len(for_user["items"]) == 5
    assert all(tok.startswith("i") for tok, _ in for_user["items"])
    scores = [s for _, s in for_user["items"]]
    assert scores == sorted(scores, reverse=True)
    (for_history,) = recommend(trained, history=["i1", "nope", "i6"], topk=5)
    assert for_history["skipped"] == ["nope"] and for_history["history"] == ["i1", "i6"]
    assert len(for_history["items"]) == 5
    with pytest.raises(ConfigError, match="none of the history's items"):
        recommend(trained, history=["nope"])
    with pytest.raises(ConfigError, match="user 'u999' is not in dataset synth"):
        recommend(trained, users=["u999"])


def test_the_same_history_gets_the_same_list_as_the_user(workdir):
    result = run_recbole_bbq("TIGER", "synth", config_dict=tiny_config(workdir, workdir / "data",
                                                                       epochs=1))
    trained = load_trained(result["checkpoint"])
    inter = (workdir / "data" / "synth" / "synth.inter").read_text().splitlines()[1:]
    history = [line.split("\t")[1] for line in inter if line.startswith("u7\t")]
    assert recommend(trained, users=["u7"])[0]["items"] == \
        recommend(trained, history=history)[0]["items"]


def test_cli_recommend_and_export(workdir, capsys):
    result = run_recbole_bbq("TIGER", "synth", config_dict=tiny_config(workdir, workdir / "data",
                                                                       epochs=1))
    out = workdir / "ids.tsv"
    main(["--recommend", f"--checkpoint={result['checkpoint']}", "--users=u1,u2", "--topk=3",
          f"--export_ids={out}"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "user\trank\titem_id\tscore" and len(lines) == 1 + 2 * 3
    rows = out.read_text().splitlines()
    assert rows[0].startswith("item_id\tlevel_1") and len(rows) == 41
