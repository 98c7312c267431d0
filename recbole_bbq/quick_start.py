"""Train, validate and test any plugin or RecBole model under the shared protocol (library
code; the command line is :mod:`recbole_bbq.cli`).

``run_recbole_bbq(model, dataset, ...)`` mirrors RecBole's ``run_recbole`` (which we cannot
import: ``recbole.quick_start`` imports ray) and returns the best-validation and test
metrics, reloading the best checkpoint for the test run. It also records wall time per
stage, training throughput, evaluation throughput and peak memory, and writes everything
to ``<results_dir>/<Model>-<dataset>-<time>.json`` atomically.
"""
from __future__ import annotations

import os
import resource
from logging import getLogger
from time import time

from recbole.data import create_dataset, data_preparation
from recbole.utils import set_color

from recbole_bbq import compat
from recbole_bbq.allocator import keep_freed_memory, release_freed_memory
from recbole_bbq.config import Config, ConfigError
from recbole_bbq.fileio import atomic_write_json, to_plain
from recbole_bbq.trainer.checkpoint import seed_everything, seed_model_rngs
from recbole_bbq.utils import get_model, get_trainer


def _reset_peak_memory() -> None:
    """Start this run's peak-memory counters afresh.

    The benchmark driver trains many models in one process; without a reset every run would
    report the largest peak of all runs before it. Linux resets the RSS high-water mark
    through ``/proc/self/clear_refs``; elsewhere the process-wide peak is reported. Memory
    that earlier runs freed and glibc kept (``keep_freed_memory``) is handed back first, or it
    would count in this run's peak.
    """
    import torch

    release_freed_memory()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_memory() -> dict:
    import torch

    peak = {"peak_rss_mb": _peak_rss_mb()}
    if torch.cuda.is_available():
        peak["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def run_recbole_bbq(model=None, dataset=None, config_file_list=None, config_dict=None,
                    saved=True) -> dict:
    """Train and evaluate one model; returns a dict of metrics, timings and paths.

    With ``nproc > 1`` the run is data-parallel (:func:`run_distributed`)."""
    _reset_peak_memory()
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    if int(config["nproc"] or 1) > 1 and config["single_spec"]:
        return run_distributed(config, model, dataset, config_file_list, config_dict, saved)
    seed_everything(config["seed"], config["reproducibility"])
    compat.start_logging(config)
    logger = getLogger()
    logger.info(config)
    if config["keep_freed_memory"] and not keep_freed_memory():
        logger.info("keep_freed_memory: this C library is not glibc, its defaults stay")

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    seed_model_rngs(config)
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    if config["resume_checkpoint"]:
        trainer.resume_checkpoint(config["resume_checkpoint"])

    show_progress = config["show_progress"]
    start = time()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=show_progress
    )
    # a resumed run reports its whole training time, the part before the resume included
    train_time = trainer.fit_time_s()
    record = trainer.run_record()
    start = time()
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=show_progress)
    test_time = time() - start

    n_test_users = test_data.sample_size  # one evaluated row per user in full ranking
    result = {
        "model": config["model"],
        "dataset": config["dataset"],
        "seed": config["seed"],
        "best_valid_score": float(best_valid_score),
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": to_plain(best_valid_result),
        "test_result": to_plain(test_result),
        "epochs_trained": len(trainer.train_loss_dict),
        "train_time_s": train_time,
        "stage_times_s": record["stage_times"],
        "test_time_s": test_time,
        "test_users": n_test_users,
        "test_users_per_s": (n_test_users / test_time) if n_test_users and test_time else None,
        "train_samples_per_epoch": len(train_data.dataset),
        "checkpoint": trainer.saved_model_file if saved else None,
        "resumed_from": record["resumed_from"],
        "valid_history": record["valid_history"],
        "best_epoch": record["best_epoch"],
        "end_reason": record["end_reason"],
        "optimizer_steps": record["optimizer_steps"],
        "schedule_horizon_steps": record["schedule_horizon_steps"],
        "stopped_by_budget": record["stopped_by_budget"],
        "tokenizer_stopped_after_epochs": record.get("tokenizer_stopped_after_epochs"),
        **_peak_memory(),
    }
    epoch_times = record.get("generator_epoch_times")
    if epoch_times:
        result["generator_train_samples_per_s"] = len(train_data.dataset) / (
            sum(epoch_times) / len(epoch_times)
        )
    if record.get("semantic_id_stats"):  # generative models (TwoStageTrainer.run_record)
        result["semantic_ids"] = record["semantic_id_stats"]
        result["tokenizer_checkpoint"] = record["tokenizer_file"]
        for key, sha256 in (record.get("stage1_input_sha256") or {}).items():
            result[f"{key}_sha256"] = sha256  # tokenizer_checkpoint, letter_cf_checkpoint
        result["tokenizer_history"] = record["tokenizer_history"]
    if saved and config["results_dir"] and trainer.is_main_process:
        path = os.path.join(config["results_dir"], f"{trainer.run_name}.json")
        result["results_file"] = path
        result["config"] = {k: to_plain(v) for k, v in config.final_config_dict.items()}
        atomic_write_json(path, result)

    logger.info(set_color("best valid ", "yellow") + f": {result['best_valid_result']}")
    logger.info(set_color("test result", "yellow") + f": {result['test_result']}")
    return result


# ---------------------------------------------------------------------------- data parallel
def free_port() -> int:
    """A TCP port nothing on this machine listens on now (for the processes' rendezvous)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _distributed_worker(rank, nproc, model, dataset, config_file_list, config_dict, saved, queue):
    import gc

    import torch.distributed as dist

    config_dict = {**config_dict, "local_rank": rank, "world_size": nproc, "offset": 0}
    result = run_recbole_bbq(model, dataset, config_file_list, config_dict, saved)
    # After a failure the exception leaves with the group intact: a peer waiting in a
    # collective is then terminated by torch.multiprocessing.spawn, which reports this rank's
    # traceback, not the peer's "connection closed".
    if rank == 0:
        queue.put(result)
    # no process tears its transport down while another still talks to it
    dist.barrier()
    # the run's DDP wrapper holds the process group; free it while the interpreter is whole.
    # Before this, a gloo worker aborted at exit ("terminate called without an active
    # exception") once in 12 runs of the nproc=2 test; after it, 41 of 41 runs passed
    # (docs/RESULTS.md, "Data parallel"): likely fixed, not proven.
    gc.collect()
    dist.destroy_process_group()


def run_distributed(config, model, dataset, config_file_list, config_dict, saved) -> dict:
    """RecBole's distributed mode: ``nproc`` processes on this machine (NCCL on GPUs, gloo on
    the CPU), each training on its share of every batch (``train_batch_size`` is the global
    batch) with the gradients averaged by DDP, and evaluating its share of the users.

    A generative model's stage 1 runs once, here, before the processes start (it sees the
    whole training data), and every process loads that tokenizer: the semantic IDs are the
    same everywhere and only stage 2 is data-parallel. Returns rank 0's result, with the
    stage-1 time of this process in ``stage_times_s``.
    """
    import torch.multiprocessing as mp

    nproc = int(config["nproc"])
    config_dict = dict(config_dict or {})
    tokenizer = None
    model_class = get_model(config["model"])
    if (getattr(model_class, "is_generative", False) and not config["tokenizer_checkpoint"]
            and not config["semantic_ids_file"] and not config["resume_checkpoint"]):
        tokenizer = train_tokenizer_only(config["model"], config["dataset"], config_file_list,
                                         {**config_dict, "nproc": 1}, save=True)
        config_dict["tokenizer_checkpoint"] = tokenizer["tokenizer_checkpoint"]
    config_dict["port"] = config["port"] or free_port()
    compat.make_run_directories(config)  # once, before the workers' loggers race for it
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_distributed_worker, nprocs=nproc, join=True,
             args=(nproc, model, dataset, config_file_list, config_dict, saved, queue))
    result = queue.get()
    if tokenizer is not None:
        result["stage_times_s"]["tokenizer"] = tokenizer["tokenizer_time_s"]
        result["tokenizer_history"] = tokenizer["tokenizer_history"]
        for key, sha256 in tokenizer["input_sha256"].items():  # read by stage 1, here
            result[f"{key}_sha256"] = sha256
    result["nproc"] = nproc
    return result


def train_tokenizer_only(model_name: str, dataset: str, config_files=None,
                         config_dict=None, save: bool = True) -> dict:
    """Train ``model_name``'s stage 1 alone and return its semantic-ID statistics (the
    paper's Table 5 needs only the tokenizer; data-parallel runs train it once).

    Returns ``{model, dataset, n_levels, stats, tokenizer_time_s, tokenizer_history,
    tokenizer_checkpoint}`` where ``stats`` holds utilisation per level and the collisions
    before the extra level (``collisions_before_extra_level``), as logged by the trainer.
    """
    config = Config(model_name, dataset, config_file_list=config_files, config_dict=config_dict)
    model_class = get_model(config["model"])
    if not getattr(model_class, "is_generative", False):
        raise ConfigError(f"{model_name} has no item tokenizer (not a generative model): "
                          f"only BBQRec and its variants, TIGER and LETTER have a stage 1")
    if config["semantic_ids_file"]:
        raise ConfigError("--tokenizer_only trains a stage 1, which semantic_ids_file replaces: "
                          "drop one of them")
    seed_everything(config["seed"], config["reproducibility"])
    compat.start_logging(config)
    train_data, _, _ = data_preparation(config, create_dataset(config))
    seed_everything(config["seed"], config["reproducibility"])
    model = model_class(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    start = time()
    trainer.fit_tokenizer(train_data, verbose=True, show_progress=False)
    elapsed = time() - start
    if save:
        trainer.save_tokenizer()
    return {
        "model": config["model"],
        "dataset": config["dataset"],
        "n_levels": int(config["n_levels"]),
        "stats": model.semantic_id_stats,
        "tokenizer_time_s": elapsed,
        "tokenizer_history": list(trainer.tokenizer_history),
        "tokenizer_checkpoint": trainer.tokenizer_file if save else None,
        "input_sha256": dict(model.input_sha256),  # e.g. LETTER's letter_cf_checkpoint
    }
