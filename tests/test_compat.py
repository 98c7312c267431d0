"""The compatibility fixes each repair what breaks on numpy 2 / torch >= 2.6 / no tensorboard."""
import importlib.util
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


def test_recbole_checkpoints_load_despite_weights_only_default(tmp_path):
    from recbole_bbq.config import Config

    config = Config("SASRec", "ml-100k", config_dict={"use_gpu": False})
    path = tmp_path / "ckpt.pth"
    torch.save({"config": config, "state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(Exception):  # what RecBole's own trainer does on torch >= 2.6
        torch.load(path)
    loaded = compat.load_checkpoint(path)
    assert loaded["config"]["model"] == "SASRec"
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_check_recbole_names_the_fix(monkeypatch):
    import importlib.metadata as metadata

    monkeypatch.setattr(metadata, "version", lambda name: "1.1.1")
    with pytest.raises(ImportError, match=r"pip install --no-deps \"recbole==1.2.1\""):
        compat.check_recbole()


def test_quick_start_never_imports_ray():
    import recbole_bbq.quick_start  # noqa: F401

    assert "ray" not in sys.modules
    assert "recbole.quick_start" not in sys.modules
