"""A side-by-side comparison, resumable and with the budget on record (the library side of
``run_recbole_bbq.py --models=...`` / ``--preset=...``; the command line is
:mod:`recbole_bbq.cli`).

Every (run, seed) of a :class:`ComparisonRequest` is trained and evaluated by
:func:`~recbole_bbq.quick_start.run_recbole_bbq` under the same protocol, and its result is
cached in ``out/runs/`` under a key made of the model, dataset, seed, the config files'
contents, every override and the contents of the input files (a stage 1, a semantic-ID table)
an override names; a rerun, or a run with more models or seeds, trains only what is missing;
``adopt`` takes finished single runs into the cache once their recorded config is checked equal
to this comparison's. ``out`` then holds ``table.md`` (laid out like the paper's tables: best per
metric in bold, the target's relative improvement over the best other model and, with several
seeds, mean +- std and a paired t-test p-value), ``results.csv`` (one row per run: every metric,
seed, stage times, peak memory, the config file), ``results.json`` (everything, with each run's
exact config) and PNG plots.

Presets mirror the paper: ``table2`` (overall), ``table3`` (tokenizer ablations), ``table4``
(generator ablations), ``figure4`` (signal ablations), ``figure3`` (sweeps over L, N, D, K,
drawn as line plots), ``table5`` (colliding items at L = 2, 3, 4; stage 1 only) and
``table6`` (inference speed: seconds per user at beam 50 and 100, users per second batched).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
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
from recbole_bbq.config import ConfigError
from recbole_bbq.fileio import atomic_write_json, atomic_write_text


@dataclass
class ComparisonRequest:
    """What one comparison trains and reports. ``models`` (default: the preset's), ``seeds``
    (default: the config's seed), ``out`` (default ``results/comparison-<dataset>[-<preset>]``);
    ``config_files`` are read by every run, ``model_config_files[MODEL]`` after them for one
    model; ``overrides`` apply to every run, ``per_model_overrides`` to a ``MODEL`` or
    ``MODEL@SEED`` scope; ``budget_*`` cap every run; ``adopt`` lists finished runs' result
    JSONs to reuse and ``no_training`` refuses to train anything neither adopted nor cached;
    ``levels`` (table5) and ``beams`` / ``speed_users`` (table6) default to the preset's;
    ``command`` is recorded in every output."""

    dataset: str
    models: Optional[List[str]] = None
    preset: Optional[str] = None
    seeds: Optional[List[int]] = None
    out: Optional[str] = None
    target: Optional[str] = None
    config_files: List[str] = field(default_factory=list)
    model_config_files: Dict[str, List[str]] = field(default_factory=dict)
    overrides: Dict = field(default_factory=dict)
    per_model_overrides: Dict[str, Dict] = field(default_factory=dict)
    budget_epochs: Optional[int] = None
    budget_tokenizer_epochs: Optional[int] = None
    budget_minutes: Optional[float] = None
    adopt: List[str] = field(default_factory=list)
    no_training: bool = False
    levels: Optional[List[int]] = None
    beams: Optional[List[int]] = None
    speed_users: int = 200
    command: str = ""

    def __post_init__(self):
        if not self.models and not self.preset:
            raise ConfigError("a comparison needs models or a preset")
        if self.preset and self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; one of {sorted(PRESETS)}")
        for name in ("models", "adopt", "config_files"):
            if isinstance(getattr(self, name), str):  # a comma-separated string would split into letters
                raise ConfigError(f"{name} is a list of strings, got the string {getattr(self, name)!r}")


# ---------------------------------------------------------------------------- one per kind
def _compare(bench, request, preset, models, target, out_dir, title):
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


def _sweep(bench, request, preset, models, target, out_dir, title):
    sweep_records, all_records, sections = {}, [], []
    for param, values in preset["sweeps"].items():
        specs = [RunSpec(f"{models[0]}[{param}={v}]", models[0], {param: v}) for v in values]
        sweep_records[param] = bench.compare(specs)
        all_records += sweep_records[param]
        sections += [f"## {param}", "", comparison_table(summarise(sweep_records[param], None)), ""]
    write_csv(os.path.join(out_dir, "results.csv"), all_records)
    plots = ["sweeps.png"] if plot_sweeps(os.path.join(out_dir, "sweeps.png"), sweep_records) else []
    return sections, {"runs": all_records}, plots


def _collisions(bench, request, preset, models, target, out_dir, title):
    records = bench.collisions(models, request.levels or preset["levels"])
    return [collision_table(records), ""], {"runs": records}, []


def _speed(bench, request, preset, models, target, out_dir, title):
    records = bench.speed(models, request.beams or preset["beams"], request.speed_users)
    return [speed_table(records), ""], {"runs": records}, []


REPORTS = {"compare": _compare, "sweep": _sweep, "collisions": _collisions, "speed": _speed}


# ---------------------------------------------------------------------------- entry point
def run(request: ComparisonRequest) -> Dict:
    """Train what is missing, then write the tables and plots into ``report["out_dir"]``;
    returns the report (what ``results.json`` holds) with, under ``"table"``, the text
    written to ``table.md``."""
    preset = PRESETS.get(request.preset, {}) if request.preset else {}
    kind = preset.get("kind", "compare")
    models = list(request.models) if request.models else list(preset["models"])
    out_dir = request.out or os.path.join(
        "results", f"comparison-{request.dataset}" + (f"-{request.preset}" if request.preset else ""))
    files, common, per_model = request.config_files, request.overrides, request.per_model_overrides
    command = request.command
    budget = {"epochs": request.budget_epochs, "tokenizer_epochs": request.budget_tokenizer_epochs,
              "minutes": request.budget_minutes}
    bench = Benchmark(request.dataset, out_dir, files, common, per_model, request.seeds,
                      budget, command, model_config_files=request.model_config_files,
                      no_training=request.no_training, seed_model=models[0])
    report_adopted = bench.adopt(list(request.adopt)) if request.adopt else []
    title = preset.get("title", "Side-by-side comparison")
    target = request.target or ("BBQRec" if "BBQRec" in models else models[-1])
    report = {"command": command, "dataset": request.dataset, "preset": request.preset, "kind": kind,
              "models": models, "seeds": bench.seeds, "budget": bench.budget,
              "config_files": files, "model_config_files": request.model_config_files,
              "overrides": common, "per_model_overrides": per_model, "out_dir": out_dir}
    sections = [f"# {title}: {request.dataset}", "", f"Command: `{command}`", "",
                f"Seeds: {bench.seeds}. Budget: "
                + (", ".join(f"{k}={v}" for k, v in bench.budget.items()) or "none (configured epochs)")
                + f". Config files: {files or 'none'}"
                + (f"; per model: {request.model_config_files}" if request.model_config_files else "")
                + f". Overrides: {common or 'none'}"
                + (f"; per model: {per_model}" if per_model else "") + ".", ""]
    sections_kind, updates, plots = REPORTS[kind](bench, request, preset, models, target, out_dir, title)
    sections += sections_kind
    report.update(updates)
    if kind in ("compare", "sweep"):
        if plots:
            sections += [f"![{p}]({p})" for p in plots] + [""]
        else:
            sections += ["Plots not drawn: matplotlib is not installed "
                         "(`pip install recbole_bbq[plots]`).", ""]
    # the cache is a working folder (ignored by git), so the table names the committed
    # records it adopted, below, rather than the cache's path
    sections += [f"Runs trained now: {len(bench.trained)}; taken from the run cache "
                 f"(`runs/` beside this file, not kept in version control): {len(bench.cached)}."]
    if report_adopted:
        sections += ["", "Adopted finished runs (config checked key by key): "
                     + ", ".join(f"`{p}`" for p in report_adopted) + "."]
        if bench.keys_added_since:
            sections += ["", "Config keys added to the code after an adopted run was made "
                         "(it ran without them): "
                         + "; ".join(f"`{p}`: {', '.join(keys)}"
                                     for p, keys in bench.keys_added_since.items()) + "."]
        if bench.inputs_taken_on_record:
            sections += ["", "Input files not on this machine, accepted unchecked because the path "
                         "is the one the run read (the SHA-256 its record keeps is shown): "
                         + "; ".join(f"`{p}`: {', '.join(files)}"
                                     for p, files in bench.inputs_taken_on_record.items()) + "."]
    report.update(plots=plots, trained=bench.trained, cached=bench.cached, adopted=report_adopted,
                  keys_added_since=bench.keys_added_since,
                  inputs_taken_on_record=bench.inputs_taken_on_record)
    table = "\n".join(sections) + "\n"
    atomic_write_text(os.path.join(out_dir, "table.md"), table)
    atomic_write_json(os.path.join(out_dir, "results.json"), report)
    return dict(report, table=table)
