"""Train, validate and test any plugin or RecBole model under the shared protocol.

``run_recbole_bbq(model, dataset, ...)`` mirrors RecBole's ``run_recbole`` (which we cannot
import: ``recbole.quick_start`` imports ray) and returns the best-validation and test
metrics, reloading the best checkpoint for the test run. It also records wall time per
stage, training throughput, evaluation throughput and peak memory, and writes everything
to ``<results_dir>/<Model>-<dataset>-<time>.json`` atomically.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
from logging import getLogger
from time import time

import yaml

from recbole_bbq import compat

compat.apply()

from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import init_logger, init_seed, set_color  # noqa: E402

from recbole_bbq.config import Config  # noqa: E402
from recbole_bbq.fileio import atomic_write_json, to_plain  # noqa: E402
from recbole_bbq.utils import get_model, get_trainer  # noqa: E402


def _reset_peak_memory() -> None:
    """Start this run's peak-memory counters afresh.

    The benchmark driver trains many models in one process; without a reset every run would
    report the largest peak of all runs before it. Linux resets the RSS high-water mark
    through ``/proc/self/clear_refs``; elsewhere the process-wide peak is reported.
    """
    import torch

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
    """Train and evaluate one model; returns a dict of metrics, timings and paths."""
    _reset_peak_memory()
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)

    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
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
    stage_times = dict(getattr(trainer, "stage_times", {}) or {"train": train_time})
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
        "stage_times_s": stage_times,
        "test_time_s": test_time,
        "test_users": n_test_users,
        "test_users_per_s": (n_test_users / test_time) if n_test_users and test_time else None,
        "train_samples_per_epoch": len(train_data.dataset),
        "checkpoint": trainer.saved_model_file if saved else None,
        "resumed_from": getattr(trainer, "resumed_from", None),
        "valid_history": record["valid_history"],
        "best_epoch": record["best_epoch"],
        "end_reason": record["end_reason"],
        "optimizer_steps": record["optimizer_steps"],
        "schedule_horizon_steps": record["schedule_horizon_steps"],
        "stopped_by_budget": trainer.stopped_by_budget,
        "tokenizer_stopped_after_epochs": getattr(trainer, "tokenizer_stopped_after_epochs", None),
        **_peak_memory(),
    }
    epoch_times = getattr(trainer, "generator_epoch_times", None)
    if epoch_times:
        result["generator_train_samples_per_s"] = len(train_data.dataset) / (
            sum(epoch_times) / len(epoch_times)
        )
    model_obj = trainer.model
    if getattr(model_obj, "semantic_id_stats", None):
        result["semantic_ids"] = model_obj.semantic_id_stats
        result["tokenizer_checkpoint"] = getattr(trainer, "tokenizer_file", None)
        result["tokenizer_history"] = list(getattr(trainer, "tokenizer_history", []))
    if saved and config["results_dir"]:
        path = os.path.join(config["results_dir"], f"{trainer.run_name}.json")
        result["results_file"] = path
        result["config"] = {k: to_plain(v) for k, v in config.final_config_dict.items()}
        atomic_write_json(path, result)

    logger.info(set_color("best valid ", "yellow") + f": {result['best_valid_result']}")
    logger.info(set_color("test result", "yellow") + f": {result['test_result']}")
    return result




COMMON_KEYS = """\
any configuration key as --key=value (values parsed as YAML), for example:
  --epochs=50 --train_batch_size=256 --learning_rate=1e-3 --stopping_step=10
  --lr_scheduler=cosine --warmup_steps=500 --schedule_horizon=30e --min_lr_ratio=0.05
  --weight_decay=0.01 --weight_decay_scope=matrices --clip_grad_norm="{max_norm: 1.0}"
  --tokenizer_epochs=20 --modalities=[text,category] --beam_size=20
  --tokenizer_checkpoint=saved/<run>-tokenizer.pth   reuse a tokenizer (skip stage 1)
  --resume_checkpoint=saved/<run>-latest.pth         resume stage 2 exactly where it stopped
  --shuffle_semantic_ids=True                        the shuffled-ID control run
  --time_budget_minutes=75                           wall-time cap (both stages)
  --extra_config_keys=[my_key]                       keys for your own code
every key and its default: properties/overall.yaml, properties/model/*.yaml

use a trained model:
  --recommend --checkpoint=saved/<run>.pth --users=u1,u2 | --history=i1,i2,i3 [--topk=10]
  [--data_path=dataset/] [--export_ids=ids.tsv]      top-k items with scores; semantic-ID TSV

side by side (any of these switches to the comparison driver):
  --models=A,B,C | --preset=table2|table3|table4|table5|table6|figure3|figure4
  --seeds=1,2,3 --set MODEL:key=value --adopt=results/x.json --out=DIR
  --budget_epochs=N --budget_tokenizer_epochs=N --budget_minutes=M --levels=2,3,4 --beams=50,100
  (python run_recbole_bbq.py --models=SASRec --dataset=x --help lists them all)

environment: RECBOLE_BBQ_DEBUG=1 shows tracebacks of user errors (normally one line, exit 2)
"""


def build_parser() -> argparse.ArgumentParser:
    """The single-run command line; ``--help`` also lists the keys and the side-by-side mode."""
    parser = argparse.ArgumentParser(
        prog="run_recbole_bbq.py", description=__doc__.splitlines()[0], epilog=COMMON_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", default=None,
                        help="BBQRec, BBQRec_noMIM & co., TIGER, LETTER or any RecBole model")
    parser.add_argument("--dataset", "-d", default=None,
                        help="a dataset prepared under data_path (default dataset/)")
    parser.add_argument("--config_files", default=None, help="comma-separated YAML files")
    return parser


def parse_args(argv=None):
    """``--model``, ``--dataset``, ``--config_files=a.yaml,b.yaml`` and any ``--key=value``.

    Values are parsed as YAML (with RecBole's float rules), so ``--topk=[5,10]``,
    ``--epochs=3`` and ``--learning_rate=1e-3`` mean what they say.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    loader = Config._build_yaml_loader(None)
    overrides = {}
    for item in extra:
        if not item.startswith("--") or "=" not in item:
            parser.error(f"unrecognised argument {item!r}: use --key=value")
        key, value = item[2:].split("=", 1)
        overrides[key] = yaml.load(value, Loader=loader) if value != "" else None
    files = [f for f in (args.config_files or "").split(",") if f]
    for file in files:
        if not os.path.isfile(file):
            parser.error(f"config file {file} does not exist")
    return args.model, args.dataset, files, overrides


def main(argv=None) -> dict:
    """The command line: one run, or a side-by-side comparison (``--models`` / ``--preset``).

    A user error -- an unknown model or key, a bad value, a missing or unusable file --
    exits with status 2 and one message naming the culprit; ``RECBOLE_BBQ_DEBUG=1`` shows
    the traceback instead.
    """
    from recbole_bbq.compat import CheckpointError
    from recbole_bbq.config import ConfigError
    from recbole_bbq.data.feature_store import FeatureFileError

    try:
        return _main(argv)
    except (ConfigError, CheckpointError, FeatureFileError) as exc:
        if os.environ.get("RECBOLE_BBQ_DEBUG") == "1":
            raise
        print(f"run_recbole_bbq.py: error: {exc}", file=sys.stderr)
        sys.exit(2)


def recommend_main(argv) -> list:
    """``--recommend --checkpoint=X.pth (--users=a,b | --history=i1,i2) [--topk=10]
    [--data_path=dataset/] [--export_ids=ids.tsv]``: prints ``user rank item_id score`` rows."""
    from recbole_bbq.recommend import export_semantic_ids, load_trained, recommend

    parser = argparse.ArgumentParser(prog="run_recbole_bbq.py --recommend")
    parser.add_argument("--recommend", action="store_true")
    parser.add_argument("--checkpoint", required=True, help="a saved model (best or -latest .pth)")
    parser.add_argument("--users", default=None, help="comma-separated user tokens")
    parser.add_argument("--history", default=None, help="comma-separated item tokens, oldest first")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--data_path", default=None, help="where the prepared dataset lies")
    parser.add_argument("--export_ids", default=None, help="write the semantic-ID table here (TSV)")
    args = parser.parse_args(argv)
    trained = load_trained(args.checkpoint, args.data_path)
    results = []
    if args.users or args.history:
        def split(text):
            return [t for t in text.split(",") if t]

        results = recommend(trained, users=split(args.users) if args.users else None,
                            history=split(args.history) if args.history else None, topk=args.topk)
        print("user\trank\titem_id\tscore")
        for entry in results:
            if entry.get("skipped"):
                print(f"# skipped items not in the dataset: {', '.join(entry['skipped'])}",
                      file=sys.stderr)
            who = entry.get("user", "<history>")
            for rank, (item, score) in enumerate(entry["items"], 1):
                print(f"{who}\t{rank}\t{item}\t{score:.6g}")
    if args.export_ids:
        print(f"semantic IDs written to {export_semantic_ids(trained, args.export_ids)}",
              file=sys.stderr)
    return results


def _main(argv=None) -> dict:
    args = sys.argv[1:] if argv is None else list(argv)
    if "--recommend" in args:
        return recommend_main(args)
    if any(a.startswith(("--models=", "--preset=")) for a in args):
        from recbole_bbq.benchmark.driver import run as run_benchmark

        return run_benchmark(args)
    model, dataset, files, overrides = parse_args(argv)
    if model is None and "model" not in overrides:
        sys.exit("run_recbole_bbq.py: --model=NAME is required")
    result = run_recbole_bbq(model, dataset, files or None, overrides)
    print(f"best valid: {result['best_valid_result']}")
    print(f"test:       {result['test_result']}")
    return result
