"""Colliding items at several ID lengths L for each tokenizer (the paper's Table 5).

    python benchmarks/collision_table.py --models=TIGER,LETTER,BBQRec --levels=2,3,4 \
        --dataset=Beauty --config_files=benchmarks/configs/beauty_cpu.yaml \
        [--set TIGER:tokenizer_epochs=150] [--out=results/collisions-Beauty.json]

Trains stage 1 only, once per (model, L), and prints colliding items before the extra level
(plus LETTER's count before its Sinkhorn re-assignment) and codebook utilisation. LETTER's
Sinkhorn runs at the last level whatever L is.
"""
import argparse
import json
import os

import yaml

from recbole_bbq.benchmark import train_tokenizer_only
from recbole_bbq.fileio import atomic_write_json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--models", required=True)
parser.add_argument("--levels", default="2,3,4")
parser.add_argument("--dataset", required=True)
parser.add_argument("--config_files", default=None)
parser.add_argument("--set", action="append", default=[], metavar="[MODEL:]KEY=VALUE")
parser.add_argument("--out", default=None)
args = parser.parse_args()

rows = []
for model in args.models.split(","):
    overrides = {"show_progress": False}
    for item in args.set:
        scope, _, assignment = item.rpartition(":")
        if scope in ("", model):
            key, value = assignment.split("=", 1)
            overrides[key] = yaml.safe_load(value)
    for level in [int(x) for x in args.levels.split(",")]:
        config = {**overrides, "n_levels": level}
        if model == "LETTER":
            config["sinkhorn_epsilons"] = overrides.get("sinkhorn_epsilons", 0.003)
        out = train_tokenizer_only(model, args.dataset, args.config_files and args.config_files.split(","),
                                   config)
        stats = out["stats"]
        row = {
            "model": model, "L": level,
            "colliding_items": stats["collisions_before_extra_level"]["colliding_items"],
            "n_items": stats["collisions_before_extra_level"]["n_items"],
            "colliding_before_sinkhorn": (stats.get("collisions_before_sinkhorn") or {}).get("colliding_items"),
            "utilisation": stats["utilisation"],
            "signal_utilisation": stats.get("signal_utilisation"),
            "tokenizer_time_s": out["tokenizer_time_s"],
            "tokenizer_checkpoint": out["tokenizer_checkpoint"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
            atomic_write_json(args.out, {"dataset": args.dataset, "config_files": args.config_files,
                                         "overrides": args.set, "rows": rows})
print("| model | " + " | ".join(f"L={x}" for x in args.levels.split(",")) + " |")
for model in args.models.split(","):
    cells = [str(r["colliding_items"]) for r in rows if r["model"] == model]
    print(f"| {model} | " + " | ".join(cells) + " |")
