"""The command line of ``run_recbole_bbq.py``: one run, a side-by-side comparison
(``--models`` / ``--preset``, :mod:`recbole_bbq.comparison.driver`) or recommendations from a
saved model (``--recommend``, :mod:`recbole_bbq.recommend`).

A user error -- an unknown model or key, a bad value, a missing or unusable file -- exits with
status 2 and one message naming the culprit; ``RECBOLE_BBQ_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

import yaml
from recbole.config import Config as RecBoleConfig

from recbole_bbq.comparison import driver as comparison_driver
from recbole_bbq.compat import CheckpointError
from recbole_bbq.config import ConfigError
from recbole_bbq.data.feature_store import FeatureFileError
from recbole_bbq.modules.semantic_ids import SemanticIDTableError
from recbole_bbq.quick_start import run_recbole_bbq

COMMON_KEYS = """\
any configuration key as --key=value (values parsed as YAML), for example:
  --epochs=50 --train_batch_size=256 --learning_rate=1e-3 --stopping_step=10
  --lr_scheduler=cosine --warmup_steps=500 --schedule_horizon=30e --min_lr_ratio=0.05
  --weight_decay=0.01 --weight_decay_scope=matrices --clip_grad_norm="{max_norm: 1.0}"
  --tokenizer_epochs=20 --modalities=[text,category] --beam_size=20
  --tokenizer_checkpoint=saved/<run>-tokenizer.pth   reuse a tokenizer (skip stage 1)
  --semantic_ids_file=ids.tsv                        train the generator on these IDs (skip stage 1)
  --tokenizer_only                                   train and save stage 1 only, print its path
  --resume_checkpoint=saved/<run>-latest.pth         resume stage 2 exactly where it stopped
  --shuffle_semantic_ids=True                        the shuffled-ID control run
  --time_budget_minutes=75                           wall-time cap (both stages)
  --nproc=2                                          data-parallel processes (DDP; gloo on CPU)
  --extra_config_keys=[my_key]                       keys for your own code
every key and its default: properties/overall.yaml, properties/model/*.yaml

use a trained model:
  --recommend --checkpoint=saved/<run>.pth --users=u1,u2 | --history=i1,i2,i3 [--topk=10]
  [--data_path=dataset/] [--export_ids=ids.tsv]      top-k items with scores; semantic-ID TSV

side by side (any of these switches to the comparison driver):
  --models=A,B,C | --preset=table2|table3|table4|table5|table6|figure3|figure4
  --seeds=1,2,3 --set MODEL:key=value --set MODEL@SEED:key=value --model_config MODEL:file.yaml
  --out=DIR
  --adopt=results/x.json,results/y.json [--no_training]   reuse finished runs; train none
  --budget_epochs=N --budget_tokenizer_epochs=N --budget_minutes=M --target=BBQRec
  --levels=2,3,4 (table5) --beams=50,100 --speed_users=200 (table6)
  (python run_recbole_bbq.py --models=SASRec --dataset=x --help lists them all)

environment: RECBOLE_BBQ_DEBUG=1 shows tracebacks of user errors (normally one line, exit 2)
"""


def _comma_list(text) -> list:
    """``"a,b,,c"`` -> ``["a", "b", "c"]``; ``None`` or ``""`` -> ``[]``."""
    return [t for t in (text or "").split(",") if t]


def parse_overrides(items) -> dict:
    """``--key=value`` arguments as a dict, values parsed as YAML with RecBole's float rules
    (``--topk=[5,10]``, ``--epochs=3``, ``--learning_rate=1e-3``); ``--key=`` is ``None``."""
    loader = RecBoleConfig._build_yaml_loader(None)
    overrides = {}
    for item in items:
        if not item.startswith("--") or "=" not in item:
            raise ConfigError(f"unrecognised argument {item!r}: use --key=value")
        key, value = item[2:].split("=", 1)
        try:
            overrides[key] = yaml.load(value, Loader=loader) if value != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--{key}: value {value!r} is not valid YAML ({exc})") from None
    return overrides


COMPARISON_USAGE = """\
side by side: train what is missing, then write table.md, results.csv, results.json and plots

  python run_recbole_bbq.py --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty \\
      [--config_files=a.yaml] [--seeds=2020,2021,2022] [--preset=table3] \\
      [--budget_epochs=N] [--budget_tokenizer_epochs=N] [--budget_minutes=M] \\
      [--set [MODEL[@SEED]:]key=value ...] [--model_config MODEL:file.yaml ...] [--key=value ...] \\
      [--out=DIR] [--target=BBQRec] [--adopt=results/A.json,results/B.json] [--no_training]

Every (model, seed) run is cached in DIR/runs/, so a rerun trains only what is missing;
presets mirror the paper's tables (recbole_bbq.comparison.driver).
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
    try:
        overrides = parse_overrides(extra)
    except ConfigError as exc:
        parser.error(str(exc))
    files = _comma_list(args.config_files)
    for file in files:
        if not os.path.isfile(file):
            parser.error(f"config file {file} does not exist")
    return args.model, args.dataset, files, overrides


def build_comparison_parser() -> argparse.ArgumentParser:
    """The side-by-side command line (:mod:`recbole_bbq.comparison.driver`; its options are
    also listed by ``run_recbole_bbq.py --help``)."""
    parser = argparse.ArgumentParser(prog="run_recbole_bbq.py --models=...",
                                     description=COMPARISON_USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help="comma-separated model names")
    parser.add_argument("--preset", default=None, choices=sorted(comparison_driver.PRESETS))
    parser.add_argument("--dataset", "-d", required=True)
    parser.add_argument("--config_files", default=None, help="comma-separated YAML files")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: config seed)")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--target", default=None, help="model compared with the best other one")
    parser.add_argument("--budget_epochs", type=int, default=None, help="cap on generator/model epochs")
    parser.add_argument("--budget_tokenizer_epochs", type=int, default=None, help="cap on stage-1 epochs")
    parser.add_argument("--budget_minutes", type=float, default=None, help="wall-time cap per run")
    parser.add_argument("--levels", default=None, help="table5: ID lengths, e.g. 2,3,4")
    parser.add_argument("--beams", default=None, help="table6: beam sizes, e.g. 50,100")
    parser.add_argument("--speed_users", type=int, default=200, help="table6: users timed one by one")
    parser.add_argument("--adopt", default=None,
                        help="comma-separated results JSONs of finished runs to reuse")
    parser.add_argument("--no_training", action="store_true",
                        help="build the tables from adopted and cached runs only: a run that "
                             "neither holds is an error naming it, instead of being trained")
    parser.add_argument("--set", action="append", default=[], metavar="[MODEL[@SEED]:]KEY=VALUE",
                        help="override for all runs (key=value), one model (MODEL:key=value) "
                             "or one model at one seed (MODEL@2021:key=value, e.g. the stage 1 "
                             "that seed saved)")
    parser.add_argument("--model_config", action="append", default=[],
                        metavar="MODEL:FILE[,FILE]",
                        help="YAML files for one model only, read after --config_files")
    return parser


def parse_comparison_args(argv):
    """The side-by-side options, the config files, the overrides for every run and those
    per ``MODEL`` or ``MODEL@SEED`` scope; a bad option exits with a message naming it."""
    parser = build_comparison_parser()
    args, extra = parser.parse_known_args(argv)
    per_model = {}
    try:
        common = parse_overrides(extra)
        for item in args.set:
            scope, _, assignment = item.rpartition(":")
            if "=" not in assignment:
                parser.error(f"--set {item!r}: use key=value, MODEL:key=value or "
                             f"MODEL@SEED:key=value")
            model, at, seed = scope.partition("@")
            if at and not (model and seed.isdigit()):
                parser.error(f"--set {item!r}: a seed scope is MODEL@SEED with an integer seed, "
                             f"as in BBQRec@2021:key=value")
            target = per_model.setdefault(scope, {}) if scope else common
            target.update(parse_overrides([f"--{assignment}"]))
    except ConfigError as exc:
        parser.error(str(exc))
    if not args.models and not args.preset:
        parser.error("give --models=A,B,... or --preset=NAME")
    files = _comma_list(args.config_files)
    model_files = {}
    for item in args.model_config:
        model, sep, names = item.partition(":")
        if not sep or not model or not names:
            parser.error(f"--model_config {item!r}: use MODEL:file.yaml[,file.yaml]")
        model_files.setdefault(model, []).extend(_comma_list(names))
    for file in files + [f for fs in model_files.values() for f in fs]:
        if not os.path.isfile(file):
            parser.error(f"config file {file} does not exist")
    args.model_files = model_files
    return args, files, common, per_model


def _ints(text):
    return [int(x) for x in _comma_list(text)] if text else None


def comparison_request(args, files, common, per_model, command) -> "comparison_driver.ComparisonRequest":
    """The parsed side-by-side options as the driver's request."""
    return comparison_driver.ComparisonRequest(
        dataset=args.dataset, models=args.models.split(",") if args.models else None,
        preset=args.preset, seeds=_ints(args.seeds), out=args.out, target=args.target,
        config_files=files, model_config_files=args.model_files, overrides=common,
        per_model_overrides=per_model, budget_epochs=args.budget_epochs,
        budget_tokenizer_epochs=args.budget_tokenizer_epochs, budget_minutes=args.budget_minutes,
        adopt=_comma_list(args.adopt), no_training=args.no_training,
        levels=_ints(args.levels), beams=_ints(args.beams), speed_users=args.speed_users,
        command=command)


def comparison_summary(report: dict) -> str:
    """The table the comparison wrote, then where its files and checkpoints are."""
    out_dir, table = report["out_dir"], report["table"].rstrip("\n")
    plots = report.get("plots") or []
    results = [run.get("result") or {} for run in report.get("runs", [])]
    checkpoints = sorted({os.path.dirname(r["checkpoint"]) for r in results if r.get("checkpoint")})
    return (table + f"\n\nWritten: {os.path.join(out_dir, 'table.md')}, results.csv, results.json"
            + (", " + ", ".join(plots) if plots else "") + f" in {out_dir}"
            + (f"; checkpoints in {', '.join(checkpoints)}" if checkpoints else ""))


def main(argv=None) -> dict:
    """Dispatch the command line; see the module docstring."""
    try:
        return _main(argv)
    except (ConfigError, CheckpointError, FeatureFileError, SemanticIDTableError) as exc:
        if os.environ.get("RECBOLE_BBQ_DEBUG") == "1":
            raise
        print(f"run_recbole_bbq.py: error: {exc}", file=sys.stderr)
        sys.exit(2)


def console_main() -> int:
    """The ``recbole-bbq`` console script: :func:`main`, exiting 0 on success (a script's
    return value becomes its exit status, and ``main`` returns the run's result)."""
    main()
    return 0


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
        results = recommend(trained, users=_comma_list(args.users) if args.users else None,
                            history=_comma_list(args.history) if args.history else None,
                            topk=args.topk)
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
        parsed, files, common, per_model = parse_comparison_args(args)
        request = comparison_request(parsed, files, common, per_model,
                                     "python run_recbole_bbq.py " + " ".join(args))
        report = comparison_driver.run(request)
        print(comparison_summary(report))
        return report
    tokenizer_only = "--tokenizer_only" in args
    model, dataset, files, overrides = parse_args([a for a in args if a != "--tokenizer_only"])
    if model is None and "model" not in overrides:
        sys.exit("run_recbole_bbq.py: --model=NAME is required")
    if tokenizer_only:
        from recbole_bbq.quick_start import train_tokenizer_only

        result = train_tokenizer_only(model, dataset, files or None, overrides, save=True)
        print(tokenizer_summary_line(result))
        return result
    result = run_recbole_bbq(model, dataset, files or None, overrides)
    print(summary_line(result))
    return result


def tokenizer_summary_line(result: dict) -> str:
    """One line for a stage-1-only run: utilisation, collisions and the file to reuse with
    ``--tokenizer_checkpoint``."""
    stats = result["stats"]
    used = "/".join(f"{u:.0%}" for u in stats.get("utilisation", []))
    collisions = stats.get("collisions_before_extra_level", {}).get("colliding_items")
    return (f"{result['model']} on {result['dataset']}: stage 1 in "
            f"{result['tokenizer_time_s']:.0f} s, codebook use per level {used}, "
            f"{collisions} colliding items before the extra level; "
            f"tokenizer: {result['tokenizer_checkpoint']}")


def summary_line(result: dict) -> str:
    """One line a user can paste: the test metrics, why training ended and where the
    results file is."""
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["test_result"].items())
    ended = (f"ended by {result.get('end_reason') or 'the epoch cap'} after "
             f"{result['epochs_trained']} epochs, best epoch {result.get('best_epoch')}")
    where = f"; results: {result['results_file']}" if result.get("results_file") else ""
    return f"{result['model']} on {result['dataset']}: test {metrics} ({ended}){where}"
