"""One command for a side-by-side comparison, resumable and with the budget on record.

    python run_recbole_bbq.py --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty \
        [--config_files=a.yaml] [--seeds=2020,2021,2022] [--preset=table3] \
        [--budget_epochs=N] [--budget_tokenizer_epochs=N] [--budget_minutes=M] \
        [--set [MODEL[@SEED]:]key=value ...] [--model_config MODEL:file.yaml ...] [--key=value ...] \
        [--out=DIR] [--target=BBQRec] [--adopt=results/A.json,results/B.json]

Every (run, seed) is trained and evaluated by :func:`~recbole_bbq.quick_start.run_recbole_bbq`
under the same protocol, and its result is cached in ``DIR/runs/`` under a key made of the
model, dataset, seed, the config files' contents and every override; a rerun, or a run with
more models or seeds, trains only what is missing; ``--adopt`` takes finished single runs
into the cache once their recorded config is checked equal to this benchmark's. ``DIR`` then holds ``table.md`` (laid out
like the paper's tables: best per metric in bold, the target's relative improvement over the
best other model and, with several seeds, mean +- std and a paired t-test p-value),
``results.csv`` (one row per run: every metric, seed, stage times, peak memory, the config
file), ``results.json`` (everything, with each run's exact config) and PNG plots.

Presets mirror the paper: ``table2`` (overall), ``table3`` (tokenizer ablations), ``table4``
(generator ablations), ``figure4`` (signal ablations), ``figure3`` (sweeps over L, N, D, K,
drawn as line plots), ``table5`` (colliding items at L = 2, 3, 4; stage 1 only) and
``table6`` (inference speed: seconds per user at beam 50 and 100, users per second batched).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from recbole_bbq.comparison.presets import METRICS, PRESETS, RunSpec  # noqa: F401 (tests read METRICS here)
from recbole_bbq.comparison.report import (
    collision_table,
    comparison_table,
    plot_metric_bars,
    plot_sweeps,
    plot_valid_curves,
    speed_table,
    summarise,
    write_csv,
)
from recbole_bbq.comparison.runs import Benchmark
from recbole_bbq.fileio import atomic_write_json, atomic_write_text


def _ints(text: Optional[str]) -> Optional[List[int]]:
    return [int(x) for x in text.split(",") if x] if text else None


# ---------------------------------------------------------------------------- one per kind
def _compare(bench, args, preset, models, target, out_dir, title):
    records = bench.compare([RunSpec(m, m) for m in models])
    summary = summarise(records, target)
    write_csv(os.path.join(out_dir, "results.csv"), records)
    plots = []
    if plot_metric_bars(os.path.join(out_dir, "metrics.png"), summary, title):
        plots.append("metrics.png")
    valid_metric = bench._config_value(models[0], "valid_metric")
    if plot_valid_curves(os.path.join(out_dir, "valid_curves.png"), records, valid_metric):
        plots.append("valid_curves.png")
    return [comparison_table(summary), ""], {"runs": records, "summary": summary}, plots


def _sweep(bench, args, preset, models, target, out_dir, title):
    sweep_records, all_records, sections = {}, [], []
    for param, values in preset["sweeps"].items():
        specs = [RunSpec(f"{models[0]}[{param}={v}]", models[0], {param: v}) for v in values]
        sweep_records[param] = bench.compare(specs)
        all_records += sweep_records[param]
        sections += [f"## {param}", "", comparison_table(summarise(sweep_records[param], None)), ""]
    write_csv(os.path.join(out_dir, "results.csv"), all_records)
    plots = ["sweeps.png"] if plot_sweeps(os.path.join(out_dir, "sweeps.png"), sweep_records) else []
    return sections, {"runs": all_records}, plots


def _collisions(bench, args, preset, models, target, out_dir, title):
    records = bench.collisions(models, _ints(args.levels) or preset["levels"])
    return [collision_table(records), ""], {"runs": records}, []


def _speed(bench, args, preset, models, target, out_dir, title):
    records = bench.speed(models, _ints(args.beams) or preset["beams"], args.speed_users)
    return [speed_table(records), ""], {"runs": records}, []


REPORTS = {"compare": _compare, "sweep": _sweep, "collisions": _collisions, "speed": _speed}


# ---------------------------------------------------------------------------- entry point
def run(args, files: List[str], common: Dict, per_model: Dict, command: str) -> Dict:
    """Train what is missing, then write the tables and plots.

    ``args`` is the parsed command line (:func:`recbole_bbq.cli.parse_comparison_args`, which
    also gives ``files``, the ``common`` overrides and the ``per_model`` ones); ``command`` is
    the command as the user typed it, recorded in every output.
    """
    preset = PRESETS.get(args.preset, {}) if args.preset else {}
    kind = preset.get("kind", "compare")
    models = args.models.split(",") if args.models else list(preset["models"])
    out_dir = args.out or os.path.join(
        "results", f"comparison-{args.dataset}" + (f"-{args.preset}" if args.preset else ""))
    budget = {"epochs": args.budget_epochs, "tokenizer_epochs": args.budget_tokenizer_epochs,
              "minutes": args.budget_minutes}
    bench = Benchmark(args.dataset, out_dir, files, common, per_model, _ints(args.seeds),
                      budget, command, model_config_files=args.model_files,
                      no_training=args.no_training)
    if not bench.seeds:
        bench.seeds = [int(bench._config_value(models[0], "seed"))]
    if args.adopt:
        report_adopted = bench.adopt([p for p in args.adopt.split(",") if p])
    else:
        report_adopted = []
    title = preset.get("title", "Side-by-side comparison")
    target = args.target or ("BBQRec" if "BBQRec" in models else models[-1])
    report = {"command": command, "dataset": args.dataset, "preset": args.preset, "kind": kind,
              "models": models, "seeds": bench.seeds, "budget": bench.budget,
              "config_files": files, "model_config_files": args.model_files,
              "overrides": common, "per_model_overrides": per_model}
    sections = [f"# {title}: {args.dataset}", "", f"Command: `{command}`", "",
                f"Seeds: {bench.seeds}. Budget: "
                + (", ".join(f"{k}={v}" for k, v in bench.budget.items()) or "none (configured epochs)")
                + f". Config files: {files or 'none'}"
                + (f"; per model: {args.model_files}" if args.model_files else "")
                + f". Overrides: {common or 'none'}"
                + (f"; per model: {per_model}" if per_model else "") + ".", ""]
    sections_kind, updates, plots = REPORTS[kind](bench, args, preset, models, target, out_dir, title)
    sections += sections_kind
    report.update(updates)
    if kind in ("compare", "sweep"):
        if plots:
            sections += [f"![{p}]({p})" for p in plots] + [""]
        else:
            sections += ["Plots not drawn: matplotlib is not installed "
                         "(`pip install recbole_bbq[plots]`).", ""]
    sections += [f"Runs trained now: {len(bench.trained)}; taken from the cache: "
                 f"{len(bench.cached)} (`{os.path.join(out_dir, 'runs')}`)."]
    if report_adopted:
        sections += ["", "Adopted finished runs (config checked key by key): "
                     + ", ".join(f"`{p}`" for p in report_adopted) + "."]
        if bench.keys_added_since:
            sections += ["", "Config keys added to the code after an adopted run was made "
                         "(it ran without them): "
                         + "; ".join(f"`{p}`: {', '.join(keys)}"
                                     for p, keys in bench.keys_added_since.items()) + "."]
    report.update(plots=plots, trained=bench.trained, cached=bench.cached, adopted=report_adopted,
                  keys_added_since=bench.keys_added_since)
    atomic_write_text(os.path.join(out_dir, "table.md"), "\n".join(sections) + "\n")
    atomic_write_json(os.path.join(out_dir, "results.json"), report)
    print("\n".join(sections))
    results = [run.get("result") or {} for run in report.get("runs", [])]
    checkpoints = sorted({os.path.dirname(r["checkpoint"]) for r in results if r.get("checkpoint")})
    print(f"\nWritten: {os.path.join(out_dir, 'table.md')}, results.csv, results.json"
          + (", " + ", ".join(plots) if plots else "") + f" in {out_dir}"
          + (f"; checkpoints in {', '.join(checkpoints)}" if checkpoints else ""))
    return report
