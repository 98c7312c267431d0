"""Data-parallel training (RecBole's distributed mode) on the CPU, two gloo processes.

The first test is the defining check: one optimizer step of TIGER's generator over a global
batch split between two processes gives the same loss, gradients and weights as one process
on the whole batch. The second runs the whole pipeline with ``nproc=2``.
"""
import json

import pytest
import torch
import torch.multiprocessing as mp

import recbole_bbq  # noqa: F401  (first: a spawned process imports this module, not conftest)
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from conftest import make_synthetic_dataset, tiny_config
from recbole_bbq.config import Config
from recbole_bbq.quick_start import free_port, run_recbole_bbq, train_tokenizer_only
from recbole_bbq.utils import get_model, get_trainer

GLOBAL_BATCH = 32


class Batches(list):
    """What RecBole's training loop reads of a loader: iteration and ``shuffle``."""

    shuffle = False


def _one_step(config_dict, tokenizer, batch_file, out_file, rank=None):
    """Build TIGER with the saved tokenizer, take one training step on this process's rows
    of the global batch; write its loss, gradients and weights to ``out_file``."""
    torch.set_num_threads(1)
    config = Config("TIGER", "synth", config_dict=config_dict)
    train_data, _, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], True)
    model = get_model("TIGER")(config, train_data._dataset)
    trainer = get_trainer(config["MODEL_TYPE"], "TIGER")(config, model)
    trainer.load_tokenizer(tokenizer)
    trainer._start_generator_phase()
    trainer._wrap_distributed()
    batch = torch.load(batch_file, weights_only=False)
    if rank is not None:  # this process's half of the global batch
        half = GLOBAL_BATCH // 2
        batch = batch[torch.arange(rank * half, (rank + 1) * half)]
    loss = trainer._train_epoch(Batches([batch]), 0)
    generator = model.generator
    torch.save({"loss": float(loss),
                "grads": {n: p.grad.clone() for n, p in generator.named_parameters() if p.grad is not None},
                "weights": {n: p.detach().clone() for n, p in generator.named_parameters()}},
               out_file)


def _rank_main(rank, config_dict, tokenizer, batch_file, out_pattern):
    config_dict = {**config_dict, "local_rank": rank, "world_size": 2, "offset": 0}
    try:
        _one_step(config_dict, tokenizer, batch_file, out_pattern.format(rank), rank)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    config = tiny_config(tmp_path, tmp_path / "data", modalities=["text"], dropout_prob=0.0,
                         learner="sgd", lr_scheduler="constant", learning_rate=0.5)
    return tmp_path, config


def test_two_processes_match_one_process_on_the_same_global_batch(setup):
    tmp_path, config = setup
    tokenizer = train_tokenizer_only("TIGER", "synth", config_dict=config)["tokenizer_checkpoint"]
    single_config = Config("TIGER", "synth", config_dict=config)
    train_data, _, _ = data_preparation(single_config, create_dataset(single_config))
    batch = next(iter(train_data))[torch.arange(GLOBAL_BATCH)]
    batch_file = tmp_path / "batch.pt"
    torch.save(batch, batch_file)

    _one_step(config, tokenizer, batch_file, tmp_path / "single.pt")
    distributed = {**config, "ip": "localhost", "port": free_port()}
    mp.spawn(_rank_main, nprocs=2, join=True,
             args=(distributed, tokenizer, str(batch_file), str(tmp_path / "rank{}.pt")))

    single = torch.load(tmp_path / "single.pt")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # the loss is a mean over rows, so the halves' mean is the global batch's loss
    assert (ranks[0]["loss"] + ranks[1]["loss"]) / 2 == pytest.approx(single["loss"], rel=1e-5)
    assert ranks[0]["loss"] != pytest.approx(ranks[1]["loss"], rel=1e-3)  # the halves differ
    assert set(single["grads"]) == set(ranks[0]["grads"]) and single["grads"]
    for name, grad in single["grads"].items():
        for rank in ranks:  # DDP averaged the halves' gradients on both processes
            torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-4, atol=1e-6)
    for name, weight in single["weights"].items():
        for rank in ranks:
            torch.testing.assert_close(rank["weights"][name], weight, rtol=1e-4, atol=1e-6)


def test_nproc_2_trains_stage_1_once_and_writes_one_result(setup):
    tmp_path, config = setup
    result = run_recbole_bbq("TIGER", "synth", config_dict={**config, "nproc": 2, "epochs": 1})
    assert result["nproc"] == 2 and result["epochs_trained"] == 1
    assert result["stage_times_s"]["tokenizer"] > 0 and result["tokenizer_history"]
    assert set(result["test_result"]) >= {"recall@10", "ndcg@10"}
    saved = json.loads(open(result["results_file"]).read())
    assert saved["config"]["tokenizer_checkpoint"] == result["tokenizer_checkpoint"]
    results = list((tmp_path / "results").glob("*.json"))
    assert results == [tmp_path / "results" / result["results_file"].split("/")[-1]]
    run_files = sorted(p.name for p in (tmp_path / "saved").glob("TIGER-*.pth")
                       if not p.name.endswith("-tokenizer.pth"))
    assert len(run_files) == 2  # the best and the -latest checkpoint of the one run
