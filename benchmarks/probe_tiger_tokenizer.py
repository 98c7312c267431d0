"""Stage-1 probe for TIGER / LETTER: train the RQ-VAE alone and print its codebook use.

    python benchmarks/probe_tiger_tokenizer.py [--model=TIGER] [--epochs=150] \
        [--set dead_code_reset=20] [--out=probes.jsonl]

Reports utilisation per level and the items sharing their full ID before any extra level,
after k-means and after training (epochs over the items, ``tokenizer_batch_size`` each).
Uses the Beauty CPU budget's content (title + category text, concatenated).
"""
import argparse
import json

import recbole_bbq  # noqa: F401
from _real import set_overrides
from recbole_bbq.quick_start import train_tokenizer_only

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="TIGER")
parser.add_argument("--dataset", default="Beauty")
parser.add_argument("--epochs", type=int, default=150)
parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--config_files", default="benchmarks/configs/beauty_cpu.yaml")
parser.add_argument("--out", default=None, help="append a JSON record of the probe to this file")
args = parser.parse_args()
overrides = set_overrides(parser, args.set)
label = ",".join(args.set) or "default"
result = train_tokenizer_only(
    args.model, args.dataset, config_files=args.config_files.split(","), save=False,
    config_dict={"use_gpu": False, "state": "WARNING", "tokenizer_epochs": args.epochs,
                 "tokenizer_eval_step": max(1, args.epochs // 3), **overrides})
stats = result["stats"]
summary = {
    "label": label, "model": args.model, "epochs": args.epochs, "overrides": overrides,
    "seconds": result["tokenizer_time_s"],
    "utilisation": stats["utilisation"],
    "colliding_items": stats["collisions_before_extra_level"]["colliding_items"],
    "largest_group": stats["collisions_before_extra_level"]["max_group_size"],
    "history": [{k: v for k, v in h.items() if k in ("epoch", "recon", "rq", "utilisation",
                                                   "colliding_items")}
                for h in result["tokenizer_history"] if "utilisation" in h],
}
print(json.dumps(summary, indent=1))
if args.out:
    with open(args.out, "a") as handle:
        handle.write(json.dumps(summary) + "\n")
