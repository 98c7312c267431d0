"""One command for a side-by-side comparison, resumable and with the budget on record.

    python run_recbole_bbq.py --models=GRU4Rec,SASRec,TIGER,LETTER,BBQRec --dataset=Beauty \
        [--config_files=a.yaml] [--seeds=2020,2021,2022] [--preset=table3] \
        [--budget_epochs=N] [--budget_tokenizer_epochs=N] [--budget_minutes=M] \
        [--set MODEL:key=value ...] [--key=value ...] [--out=DIR] [--target=BBQRec] \
        [--adopt=results/A.json,results/B.json]

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

import argparse
import csv
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from logging import getLogger
from time import time
from typing import Dict, List, Optional

import numpy as np

from recbole_bbq.fileio import atomic_write_json, atomic_write_text

METRICS = ["recall@5", "recall@10", "ndcg@5", "ndcg@10"]
METRIC_LABELS = {"recall@5": "Recall@5", "recall@10": "Recall@10", "ndcg@5": "NDCG@5",
                 "ndcg@10": "NDCG@10"}
SWEEPS = {  # paper sec. 5.4, around L=3, N=256, D=128, K=100
    "n_levels": [1, 2, 3, 4],
    "codebook_size": [64, 128, 256, 512],
    "codebook_dim": [32, 64, 128, 256],
    "sim_buckets": [10, 50, 100, 200],
}
# Keys that may differ between an adopted run and this benchmark: they say where a run wrote
# its files, how it was resumed or how fast it ran, not what it computed (a resumed run
# continues exactly where its checkpoint stopped; length_buckets gives the same loss and
# scores for any value, which the tests check).
ADOPT_IGNORED_KEYS = {"checkpoint_dir", "results_dir", "device", "gpu_id", "dataset_save_path",
                      "dataloaders_save_path", "show_progress", "state", "use_gpu",
                      "resume_checkpoint", "length_buckets"}
PRESETS = {
    "table2": {"kind": "compare", "title": "Overall performance (paper Table 2)",
               "models": ["GRU4Rec", "SASRec", "BERT4Rec", "TIGER", "LETTER", "BBQRec"]},
    "table3": {"kind": "compare", "title": "Tokenizer ablations (paper Table 3)",
               "models": ["BBQRec_noMIM", "BBQRec_noRec", "BBQRec_noU", "BBQRec"]},
    "table4": {"kind": "compare", "title": "Generator ablations (paper Table 4)",
               "models": ["BBQRec_S", "BBQRec_E", "BBQRec"]},
    "figure4": {"kind": "compare", "title": "Signal ablations (paper Figure 4)",
                "models": ["BBQRec_noID", "BBQRec_noText", "BBQRec_noImage", "BBQRec"]},
    "figure3": {"kind": "sweep", "title": "Hyper-parameters (paper Figure 3)",
                "models": ["BBQRec"], "sweeps": SWEEPS},
    "table5": {"kind": "collisions", "title": "Colliding items by ID length (paper Table 5)",
               "models": ["TIGER", "LETTER", "BBQRec"], "levels": [2, 3, 4]},
    "table6": {"kind": "speed", "title": "Inference speed (paper Table 6)",
               "models": ["TIGER", "BBQRec"], "beams": [50, 100]},
}


@dataclass
class RunSpec:
    """One configuration to train: a display label, a model and its own overrides."""

    label: str
    model: str
    overrides: Dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- arguments
def build_parser() -> argparse.ArgumentParser:
    """The side-by-side command line (also shown by ``run_recbole_bbq.py --help``)."""
    parser = argparse.ArgumentParser(prog="run_recbole_bbq.py --models=...",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated model names")
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS))
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
    parser.add_argument("--set", action="append", default=[], metavar="[MODEL:]KEY=VALUE",
                        help="override for one model (MODEL:key=value) or all (key=value)")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    from recbole_bbq.config import ConfigError, parse_overrides

    per_model = {}
    try:
        common = parse_overrides(extra)
        for item in args.set:
            scope, _, assignment = item.rpartition(":")
            if "=" not in assignment:
                parser.error(f"--set {item!r}: use MODEL:key=value or key=value")
            target = per_model.setdefault(scope, {}) if scope else common
            target.update(parse_overrides([f"--{assignment}"]))
    except ConfigError as exc:
        parser.error(str(exc))
    if not args.models and not args.preset:
        parser.error("give --models=A,B,... or --preset=NAME")
    files = [f for f in (args.config_files or "").split(",") if f]
    for file in files:
        if not os.path.isfile(file):
            parser.error(f"config file {file} does not exist")
    return args, files, common, per_model


def _ints(text: Optional[str]) -> Optional[List[int]]:
    return [int(x) for x in text.split(",") if x] if text else None


# ---------------------------------------------------------------------------- the driver
class Benchmark:
    """Runs (cached) and write-ups for one dataset; see the module docstring."""

    def __init__(self, dataset: str, out_dir: str, config_files=None, common=None,
                 per_model=None, seeds=None, budget=None, command: str = ""):
        self.dataset = dataset
        self.out_dir = out_dir
        self.config_files = list(config_files or [])
        self.common = dict(common or {})
        self.per_model = dict(per_model or {})
        self.budget = {k: v for k, v in (budget or {}).items() if v is not None}
        self.command = command
        self.seeds = list(seeds or [])
        self.logger = getLogger()
        self.trained, self.cached = [], []

    # ------------------------------------------------------------------ configuration
    def _config(self, model: str, overrides: Dict):
        from recbole_bbq.config import Config

        return Config(model, self.dataset, config_file_list=self.config_files or None,
                      config_dict=overrides)

    def _config_value(self, model, key):
        return self._config(model, dict(self.common))[key]

    def overrides_for(self, spec: RunSpec, seed: int) -> Dict:
        overrides = {**self.common, **self.per_model.get(spec.model, {}),
                     **self.per_model.get(spec.label, {}), **spec.overrides, "seed": seed}
        caps = {"epochs": self.budget.get("epochs"),
                "tokenizer_epochs": self.budget.get("tokenizer_epochs")}
        if any(v is not None for v in caps.values()):
            resolved = self._config(spec.model, overrides)
            for key, cap in caps.items():
                if cap is not None and resolved[key] is not None:
                    overrides[key] = min(int(resolved[key]), int(cap))
        if self.budget.get("minutes") is not None:
            overrides["time_budget_minutes"] = self.budget["minutes"]
        return overrides

    def run_key(self, kind: str, spec: RunSpec, seed: int, overrides: Dict) -> str:
        files = []
        for path in self.config_files:
            with open(path, encoding="utf-8") as fh:
                files.append(fh.read())
        payload = json.dumps({"kind": kind, "model": spec.model, "dataset": self.dataset,
                              "seed": seed, "config_files": files, "overrides": overrides},
                             sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]

    def _cache_path(self, kind: str, spec: RunSpec, seed: int, key: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in spec.label)
        return os.path.join(self.out_dir, "runs", f"{kind}-{safe}-seed{seed}-{key}.json")

    def _cached_or_run(self, kind: str, spec: RunSpec, seed: int, run_fn):
        overrides = self.overrides_for(spec, seed)
        key = self.run_key(kind, spec, seed, overrides)
        path = self._cache_path(kind, spec, seed, key)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
            self.cached.append(path)
            self.logger.info(f"benchmark: {spec.label} seed {seed} from cache {path}")
            return record
        self.logger.info(f"benchmark: training {spec.label} seed {seed}")
        start = time()
        result = run_fn(spec, overrides)
        record = {"label": spec.label, "model": spec.model, "seed": seed, "key": key,
                  "overrides": overrides, "wall_time_s": time() - start, "result": result}
        atomic_write_json(path, record)
        self.trained.append(path)
        return record

    def adopt(self, paths: List[str]) -> List[str]:
        """Take finished ``run_recbole_bbq.py`` results into the cache, after checking that
        each one's recorded config equals what this benchmark would run (every key except
        machine-specific ones such as output folders and the device)."""
        from recbole_bbq.fileio import to_plain as _plain

        adopted = []
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                result = json.load(fh)
            model, seed = result.get("model"), result.get("seed")
            if "config" not in result or "test_result" not in result:
                raise ValueError(f"--adopt {path}: not a run_recbole_bbq results file")
            if result.get("dataset") != self.dataset or seed not in self.seeds:
                raise ValueError(
                    f"--adopt {path}: dataset {result.get('dataset')!r} seed {seed} is not part "
                    f"of this benchmark (dataset {self.dataset!r}, seeds {self.seeds})"
                )
            spec = RunSpec(model, model)
            overrides = self.overrides_for(spec, seed)
            expected = _plain(self._config(model, overrides).final_config_dict)
            stored = result["config"]
            differ = sorted(k for k in set(expected) | set(stored)
                            if k not in ADOPT_IGNORED_KEYS and expected.get(k) != stored.get(k))
            if differ:
                detail = ", ".join(f"{k}: ran {stored.get(k)!r}, expected {expected.get(k)!r}"
                                   for k in differ[:8])
                raise ValueError(f"--adopt {path}: its config differs from this benchmark's "
                                 f"{model} run in {len(differ)} keys ({detail})")
            key = self.run_key("run", spec, seed, overrides)
            record = {"label": model, "model": model, "seed": seed, "key": key,
                      "overrides": overrides, "adopted_from": path,
                      "wall_time_s": result.get("train_time_s", 0) + result.get("test_time_s", 0),
                      "result": result}
            atomic_write_json(self._cache_path("run", spec, seed, key), record)
            adopted.append(path)
        return adopted

    # ------------------------------------------------------------------ run kinds
    def _train_and_test(self, spec: RunSpec, overrides: Dict) -> Dict:
        from recbole_bbq.quick_start import run_recbole_bbq

        overrides = {"results_dir": os.path.join(self.out_dir, "runs", "raw"), **overrides}
        return run_recbole_bbq(spec.model, self.dataset, self.config_files or None, overrides)

    def compare(self, specs: List[RunSpec]) -> List[Dict]:
        return [self._cached_or_run("run", spec, seed, self._train_and_test)
                for spec in specs for seed in self.seeds]

    def collisions(self, models: List[str], levels: List[int]) -> List[Dict]:
        from recbole_bbq.benchmark.tokenizer_only import train_tokenizer_only

        def run(spec, overrides):
            return train_tokenizer_only(spec.model, self.dataset, self.config_files or None,
                                        overrides, save=True)

        records = []
        for model in models:
            for level in levels:
                extra = {"n_levels": level}
                if model == "LETTER" and "sinkhorn_epsilons" not in self.per_model.get(model, {}):
                    extra["sinkhorn_epsilons"] = 0.003  # the last level, whatever L is
                spec = RunSpec(f"{model}[L={level}]", model, extra)
                records += [self._cached_or_run("tokenizer", spec, seed, run) for seed in self.seeds]
        return records

    def speed(self, models: List[str], beams: List[int], n_users: int) -> List[Dict]:
        from recbole_bbq.benchmark.speed import inference_speed

        records = []
        for model in models:
            spec = RunSpec(model, model)
            for seed in self.seeds:
                trained = self._cached_or_run("run", spec, seed, self._train_and_test)
                checkpoint = trained["result"]["checkpoint"]

                def run(spec_, overrides, checkpoint=checkpoint):
                    # the speed_* keys only tell cached speed runs apart; no model reads them
                    config = {k: v for k, v in overrides.items() if not k.startswith("speed_")}
                    return inference_speed(spec_.model, self.dataset, self.config_files or None,
                                           config, checkpoint, beams, n_users)

                records.append(self._cached_or_run("speed", RunSpec(f"{model}[speed]", model,
                                                                     {"speed_beams": beams,
                                                                      "speed_users": n_users}),
                                                   seed, run))
        return records


# ---------------------------------------------------------------------------- summaries
def _metric(record: Dict, metric: str) -> float:
    return float(record["result"]["test_result"][metric])


def summarise(records: List[Dict], target: Optional[str]) -> Dict:
    """Mean/std per label and metric; best other label; target's improvement and p-value."""
    labels = list(dict.fromkeys(r["label"] for r in records))
    by_label = {lab: [r for r in records if r["label"] == lab] for lab in labels}
    stats = {lab: {m: {"mean": float(np.mean([_metric(r, m) for r in rs])),
                       "std": float(np.std([_metric(r, m) for r in rs], ddof=1)) if len(rs) > 1 else 0.0,
                       "n": len(rs)}
                   for m in METRICS}
             for lab, rs in by_label.items()}
    summary = {"labels": labels, "stats": stats, "target": target, "comparison": {}}
    others = [lab for lab in labels if lab != target]
    if target in stats and others:
        for m in METRICS:
            best = max(others, key=lambda lab: stats[lab][m]["mean"])
            base = stats[best][m]["mean"]
            entry = {"best_other": best,
                     "improvement": (stats[target][m]["mean"] - base) / base if base > 0 else None,
                     "p_value": None}
            t_vals = {r["seed"]: _metric(r, m) for r in by_label[target]}
            b_vals = {r["seed"]: _metric(r, m) for r in by_label[best]}
            common = sorted(set(t_vals) & set(b_vals))
            if len(common) >= 2:
                from scipy.stats import ttest_rel

                diff = [t_vals[s] - b_vals[s] for s in common]
                if np.allclose(diff, diff[0]):  # t-test undefined for constant differences
                    entry["p_value"] = 0.0 if diff[0] != 0 else 1.0
                else:
                    entry["p_value"] = float(ttest_rel([t_vals[s] for s in common],
                                                       [b_vals[s] for s in common]).pvalue)
            summary["comparison"][m] = entry
    return summary


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 else "")


def comparison_table(summary: Dict) -> str:
    """Markdown laid out like the paper's Table 2: metrics as rows, models as columns."""
    labels, stats, target = summary["labels"], summary["stats"], summary["target"]
    has_cmp = bool(summary["comparison"])
    head = ["Metric", *labels] + (["Improv.", "p-value"] if has_cmp else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in METRICS:
        best = max(stats[lab][m]["mean"] for lab in labels)
        cells = []
        for lab in labels:
            s = stats[lab][m]
            text = _fmt(s["mean"], s["std"], s["n"])
            cells.append(f"**{text}**" if np.isclose(s["mean"], best) else text)
        row = [METRIC_LABELS[m], *cells]
        if has_cmp:
            c = summary["comparison"][m]
            row.append("n/a" if c["improvement"] is None else f"{c['improvement']:+.2%} vs {c['best_other']}")
            row.append("n/a (1 seed)" if c["p_value"] is None else f"{c['p_value']:.3g}")
        lines.append("| " + " | ".join(row) + " |")
    if has_cmp:
        lines.append("")
        lines.append(f"Improv.: relative difference of {target} to the best other model per "
                     f"metric; p-value: paired t-test over seeds (significant at 0.05).")
    return "\n".join(lines)


def collision_table(records: List[Dict]) -> str:
    models = list(dict.fromkeys(r["model"] for r in records))
    levels = sorted({r["result"]["n_levels"] for r in records})
    lines = ["| Tokenizer | " + " | ".join(f"L={lv}" for lv in levels) + " |",
             "|" + "---|" * (len(levels) + 1)]
    for model in models:
        cells = []
        for lv in levels:
            rs = [r for r in records if r["model"] == model and r["result"]["n_levels"] == lv]
            counts = [r["result"]["stats"]["collisions_before_extra_level"]["colliding_items"] for r in rs]
            text = "/".join(str(c) for c in counts)
            before = [(r["result"]["stats"].get("collisions_before_sinkhorn") or {}).get("colliding_items")
                      for r in rs]
            if any(b is not None for b in before):
                text += " (" + "/".join(str(b) for b in before) + " before Sinkhorn)"
            cells.append(text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    n_items = records[0]["result"]["stats"]["collisions_before_extra_level"]["n_items"] if records else 0
    lines += ["", f"Items sharing their full semantic ID with another item, before any extra "
                  f"disambiguation level, out of {n_items} items."]
    return "\n".join(lines)


def speed_table(records: List[Dict]) -> str:
    beams = sorted({int(b) for r in records for b in r["result"]["per_user_s"]})
    lines = ["| Model | " + " | ".join(f"s/user, beam {b}" for b in beams)
             + " | users/s batched (beam " + "/".join(map(str, beams)) + ") |",
             "|" + "---|" * (len(beams) + 2)]
    for r in records:
        res = r["result"]
        cells = [f"{res['per_user_s'][str(b)]:.4f}" for b in beams]
        batched = "/".join(f"{res['batched_users_per_s'][str(b)]:.0f}" for b in beams)
        lines.append(f"| {r['model']} (seed {r['seed']}) | " + " | ".join(cells) + f" | {batched} |")
    lines += ["", f"Single-user latency averaged over {records[0]['result']['n_users']} test "
                  f"users (batch of 1); batched: the whole test split at eval_batch_size."
              if records else ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- outputs
def write_csv(path: str, records: List[Dict]) -> None:
    rows = []
    for r in records:
        res = r["result"]
        row = {"label": r["label"], "model": r["model"], "seed": r["seed"], "key": r["key"]}
        for split in ("test_result", "best_valid_result"):
            for m, v in (res.get(split) or {}).items():
                row[f"{split.split('_')[0] if split == 'test_result' else 'valid'}_{m}"] = v
        for stage, seconds in (res.get("stage_times_s") or {}).items():
            row[f"time_{stage}_s"] = seconds
        for key in ("train_time_s", "test_time_s", "test_users_per_s", "epochs_trained",
                    "end_reason", "best_epoch", "optimizer_steps",
                    "peak_rss_mb", "peak_cuda_mb", "stopped_by_budget", "results_file"):
            row[key] = res.get(key)
        row["wall_time_s"] = r.get("wall_time_s")
        row["config"] = json.dumps(res.get("config", {}), sort_keys=True)
        rows.append(row)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def plot_metric_bars(path: str, summary: Dict, title: str) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    labels, stats = summary["labels"], summary["stats"]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 3), 4))
    width = 0.8 / len(labels)
    x = np.arange(len(METRICS))
    for i, lab in enumerate(labels):
        means = [stats[lab][m]["mean"] for m in METRICS]
        stds = [stats[lab][m]["std"] for m in METRICS]
        ax.bar(x + i * width, means, width, yerr=stds, label=lab, capsize=2)
    ax.set_xticks(x + width * (len(labels) - 1) / 2, [METRIC_LABELS[m] for m in METRICS])
    ax.set_ylabel("test score")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_valid_curves(path: str, records: List[Dict], metric_name: str) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in records:
        history = r["result"].get("valid_history") or []
        if history:
            ax.plot([h["epoch"] for h in history], [h["valid_score"] for h in history],
                    marker="o", label=f"{r['label']} (seed {r['seed']})")
    ax.set_xlabel("epoch (generator)")
    ax.set_ylabel(f"validation {metric_name}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_sweeps(path: str, sweep_records: Dict[str, List[Dict]]) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(sweep_records), figsize=(4 * len(sweep_records), 3.5),
                             squeeze=False)
    for ax, (param, records) in zip(axes[0], sweep_records.items()):
        values = sorted({r["overrides"][param] for r in records})
        for m in METRICS:
            ys = [np.mean([_metric(r, m) for r in records if r["overrides"][param] == v]) for v in values]
            ax.plot(values, ys, marker="o", label=METRIC_LABELS[m])
        ax.set_xlabel(param)
        ax.set_xticks(values)
    axes[0][0].set_ylabel("test score")
    axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------- entry point
def run(argv=None) -> Dict:
    args, files, common, per_model = parse_args(argv)
    preset = PRESETS.get(args.preset, {}) if args.preset else {}
    kind = preset.get("kind", "compare")
    models = args.models.split(",") if args.models else list(preset["models"])
    out_dir = args.out or os.path.join(
        "results", f"benchmark-{args.dataset}" + (f"-{args.preset}" if args.preset else ""))
    budget = {"epochs": args.budget_epochs, "tokenizer_epochs": args.budget_tokenizer_epochs,
              "minutes": args.budget_minutes}
    command = "python run_recbole_bbq.py " + " ".join(sys.argv[1:] if argv is None else argv)
    bench = Benchmark(args.dataset, out_dir, files, common, per_model, _ints(args.seeds),
                      budget, command)
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
              "config_files": files, "overrides": common, "per_model_overrides": per_model}
    sections = [f"# {title}: {args.dataset}", "", f"Command: `{command}`", "",
                f"Seeds: {bench.seeds}. Budget: "
                + (", ".join(f"{k}={v}" for k, v in bench.budget.items()) or "none (configured epochs)")
                + f". Config files: {files or 'none'}. Overrides: {common or 'none'}"
                + (f"; per model: {per_model}" if per_model else "") + ".", ""]
    plots = []
    if kind == "compare":
        records = bench.compare([RunSpec(m, m) for m in models])
        summary = summarise(records, target)
        sections += [comparison_table(summary), ""]
        report.update(runs=records, summary=summary)
        write_csv(os.path.join(out_dir, "results.csv"), records)
        if plot_metric_bars(os.path.join(out_dir, "metrics.png"), summary, title):
            plots.append("metrics.png")
        valid_metric = bench._config_value(models[0], "valid_metric")
        if plot_valid_curves(os.path.join(out_dir, "valid_curves.png"), records, valid_metric):
            plots.append("valid_curves.png")
    elif kind == "sweep":
        sweeps = preset["sweeps"]
        sweep_records, all_records = {}, []
        for param, values in sweeps.items():
            specs = [RunSpec(f"{models[0]}[{param}={v}]", models[0], {param: v}) for v in values]
            sweep_records[param] = bench.compare(specs)
            all_records += sweep_records[param]
            summary = summarise(sweep_records[param], None)
            sections += [f"## {param}", "", comparison_table(summary), ""]
        report.update(runs=all_records)
        write_csv(os.path.join(out_dir, "results.csv"), all_records)
        if plot_sweeps(os.path.join(out_dir, "sweeps.png"), sweep_records):
            plots.append("sweeps.png")
    elif kind == "collisions":
        levels = _ints(args.levels) or preset["levels"]
        records = bench.collisions(models, levels)
        sections += [collision_table(records), ""]
        report.update(runs=records)
    elif kind == "speed":
        beams = _ints(args.beams) or preset["beams"]
        records = bench.speed(models, beams, args.speed_users)
        sections += [speed_table(records), ""]
        report.update(runs=records)
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
    report.update(plots=plots, trained=bench.trained, cached=bench.cached, adopted=report_adopted)
    atomic_write_text(os.path.join(out_dir, "table.md"), "\n".join(sections) + "\n")
    atomic_write_json(os.path.join(out_dir, "results.json"), report)
    print("\n".join(sections))
    return report
