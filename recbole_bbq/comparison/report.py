"""Write-ups of a comparison: summaries, markdown tables, CSV and plots."""
from __future__ import annotations

import csv
import io
import json
from typing import Dict, List, Optional

import numpy as np

from recbole_bbq.comparison.presets import METRIC_LABELS, METRICS
from recbole_bbq.fileio import atomic_write_text


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
