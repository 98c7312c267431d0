"""Stage-1 stability probe for BBQRec on a prepared dataset: ~150 batches in about 80 s.

    python benchmarks/probe_bbq_tokenizer.py [--set latent_norm=none] [--set mim_weight=0] \
        [--clamp-mim] [--steps=150] [--dataset=Beauty] [--out=probes.jsonl]

Prints every loss component every 30 batches, then the codebook utilisation per level and
signal and the colliding items. ``--set key=value`` overrides any config key (values parsed
as on the command line); ``--clamp-mim`` clamps the CLUB estimate at 0 (mutual information
is non-negative).
Used to diagnose the stage-1 divergence and the content-code collapse recorded in
docs/RESULTS.md. ``--out`` appends one JSON line per probe (settings, losses, diagnostics
before and after training) so a table can be rebuilt without re-running.
"""
import argparse
import json
import time

import torch

import recbole_bbq  # noqa: F401
from _real import set_overrides
from recbole.data import create_dataset, data_preparation
from recbole_bbq.config import Config
from recbole_bbq.model import BBQRec
from recbole_bbq.modules import club as club_mod

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--clamp-mim", action="store_true")
parser.add_argument("--steps", type=int, default=150)
parser.add_argument("--dataset", default="Beauty")
parser.add_argument("--config_files", default="benchmarks/configs/bbqrec_beauty_smoke.yaml")
parser.add_argument("--out", default=None, help="append a JSON record of the probe to this file")
args = parser.parse_args()
overrides = set_overrides(parser, args.set)
label = ",".join(args.set) + (",clamp-mim" if args.clamp_mim else "") or "default"
if args.clamp_mim:
    unclamped = club_mod.CLUB.mi_upper_bound
    club_mod.CLUB.mi_upper_bound = lambda self, z, zbar: unclamped(self, z, zbar).clamp(min=0)
cfg = Config("BBQRec", args.dataset, config_file_list=args.config_files.split(","),
             config_dict={"use_gpu": False, "state": "WARNING", **overrides})
train, _, _ = data_preparation(cfg, create_dataset(cfg))
torch.manual_seed(0)
model = BBQRec(cfg, train.dataset)
optimizer = torch.optim.AdamW(model.tokenizer_parameters(), lr=cfg["tokenizer_learning_rate"])
model.train()
model.tokenizer_init(train)
before = model.tokenizer_diagnostics()
print(label, "after k-means", before, flush=True)
model.train()
start = time.time()
for step, batch in enumerate(model.tokenizer_batches(train)):
    optimizer.zero_grad()
    losses = model.calculate_tokenizer_loss(batch)
    losses["loss"].backward()
    optimizer.step()
    if step % 30 == 0:
        shown = {k: f"{float(v):.3g}" for k, v in losses.items()}
        print(label, step, shown, f"{time.time() - start:.0f}s", flush=True)
    if step == args.steps:
        break
after = model.tokenizer_diagnostics()
print(label, "after training", after, flush=True)
if args.out:
    record = {"label": label, "overrides": overrides, "steps": step, "seconds": time.time() - start,
              "dataset": args.dataset, "config_files": args.config_files,
              "last_losses": {k: float(v) for k, v in losses.items()},
              "after_kmeans": before, "after_training": after}
    with open(args.out, "a") as handle:
        handle.write(json.dumps(record) + "\n")
