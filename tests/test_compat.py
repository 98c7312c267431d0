"""The compatibility fixes each repair what breaks on numpy 2 / torch >= 2.6 / no tensorboard."""
import importlib.util
import inspect
import subprocess
import sys

import numpy as np
import pytest
import torch

from recbole_bbq import compat


def test_numpy_aliases_recbole_reads_exist():
    compat.patch_numpy()
    assert np.float_ is np.float64 and np.complex_ is np.complex128
    assert np.unicode_ is np.str_ and np.bool8 is np.bool_
    assert np.float is np.float64 and np.int is np.int_ and np.object is np.object_


def test_recbole_metrics_run_on_numpy_2():
    from recbole.evaluator.metrics import NDCG

    compat.patch_numpy()
    ndcg = NDCG.__new__(NDCG)
    ndcg.topk = [2]
    # ranks 1 and 3 hit out of 2 positives: uses np.float internally
    result = ndcg.metric_info(np.array([[True, False], [False, True]]), np.array([1, 2]))
    assert result.shape == (2, 2) and result[0, 0] == 1.0


def test_tensorboard_stub_when_tensorboard_missing(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a),
    )
    assert compat.patch_tensorboard() is True
    writer = sys.modules["torch.utils.tensorboard"].SummaryWriter("ignored")
    writer.add_scalar("loss", 1.0, 0)  # accepted and ignored
    assert compat.patch_tensorboard() is False  # idempotent


class _Payload:
    """Unpickling this runs ``touch <marker>``: what a crafted checkpoint can carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_with_a_code_payload_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Payload(marker)}, path)
    with pytest.raises(compat.CheckpointError, match=r"evil\.pth.*pickled Python objects.*system"):
        compat.load_checkpoint(path)
    assert not marker.exists()


def test_a_pickled_recbole_config_is_refused_by_name(tmp_path):
    from recbole_bbq.config import Config

    config = Config("SASRec", "ml-100k", config_dict={"use_gpu": False})
    path = tmp_path / "old.pth"
    torch.save({"config": config, "state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(compat.CheckpointError, match=r"old\.pth.*recbole_bbq\.config\.Config"):
        compat.load_checkpoint(path)


def test_plain_checkpoints_load_weights_only(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save({"config": {"model": "SASRec"}, "state_dict": {"w": torch.ones(2)}}, path)
    loaded = compat.load_checkpoint(path)
    assert loaded["config"]["model"] == "SASRec" and torch.equal(loaded["state_dict"]["w"], torch.ones(2))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_damaged_or_missing_files_are_named(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(compat.CheckpointError, match=r"tokenizer_checkpoint .*bad\.pth"):
        compat.load_checkpoint(path, what="tokenizer_checkpoint")
    with pytest.raises(compat.CheckpointError, match="does not exist"):
        compat.load_checkpoint(tmp_path / "missing.pth")


def test_check_recbole_names_the_fix(monkeypatch):
    import importlib.metadata as metadata

    monkeypatch.setattr(metadata, "version", lambda name: "1.1.1")
    with pytest.raises(ImportError, match=r"pip install --no-deps \"recbole==1.2.1\""):
        compat.check_recbole()


class ImportRecorder:
    """A ``sys.meta_path`` finder that notes every attempt to import ray or RecBole's
    quick_start (which imports ray). Where ray is not installed, ``"ray" not in sys.modules``
    holds even after a failed attempt: the attempt is what counts."""

    WATCHED = ("ray", "recbole.quick_start")

    def __init__(self):
        self.attempts = []

    def find_spec(self, name, path=None, target=None):
        if any(name == w or name.startswith(w + ".") for w in self.WATCHED):
            self.attempts.append(name)
        return None  # let the real finders answer


def test_quick_start_never_imports_ray():
    """Module-level imports, in a fresh interpreter (this one has imported them already), with
    the recorder in place before the package's own start-up code runs."""
    # the class's own source, so the child installs it before importing anything else
    code = inspect.getsource(ImportRecorder) + (
        "import sys\n"
        "recorder = ImportRecorder()\n"
        "sys.meta_path.insert(0, recorder)\n"
        "import recbole_bbq.quick_start, recbole_bbq.cli, recbole_bbq.comparison\n"
        "print(recorder.attempts)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    # the recorder does see an attempt (find_spec asks the finders without importing)
    recorder = ImportRecorder()
    sys.meta_path.insert(0, recorder)
    try:
        importlib.util.find_spec("ray")
    finally:
        sys.meta_path.remove(recorder)
    assert recorder.attempts == ["ray"]


def test_recbole_runs_raise_no_known_deprecation_noise(tmp_path, monkeypatch):
    import warnings

    from conftest import make_synthetic_dataset, tiny_config
    from recbole_bbq.quick_start import run_recbole_bbq

    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    recorder = ImportRecorder()  # and a whole run imports neither lazily
    sys.meta_path.insert(0, recorder)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            compat.quiet_recbole_warnings()  # pytest resets filters per test; apply() ran at import
            run_recbole_bbq("SASRec", "synth", config_dict=tiny_config(
                tmp_path, tmp_path / "data", epochs=1))
    finally:
        sys.meta_path.remove(recorder)
    assert recorder.attempts == []
    noisy = [str(w.message)[:60] for w in caught
             if "fillna" in str(w.message) or "GradScaler" in str(w.message)
             or "set on a copy" in str(w.message)]
    assert noisy == []


_LOOKUP = """
import sys, torch
import recbole_bbq
from recbole_bbq.utils import get_model
torch.autograd.set_detect_anomaly(sys.argv[1] == "on")
get_model("SASRec")  # imports RecBole's sequential models, sine.py among them
print(torch.is_anomaly_enabled())
"""


@pytest.mark.parametrize("before", ["off", "on"])
def test_looking_up_a_recbole_model_leaves_anomaly_detection_as_it_was(before):
    """RecBole's sine.py switches anomaly detection on at import, which made every later
    backward pass in the process slow; the lookup must leave the caller's setting."""
    out = subprocess.run([sys.executable, "-c", _LOOKUP, before], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == ("True" if before == "on" else "False")


def test_recbole_sequential_models_do_switch_anomaly_detection_on():
    """The premise of fix 6: without the guard the import turns it on (if RecBole stops
    doing this, the guard can go)."""
    code = ("import torch, recbole_bbq\nimport recbole.model.sequential_recommender\n"
            "print(torch.is_anomaly_enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[-1] == "True"
