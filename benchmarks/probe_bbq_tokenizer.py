"""Stage-1 stability probe for BBQRec on a prepared dataset: ~150 batches in about 80 s.

    python benchmarks/probe_bbq_tokenizer.py base|clamp-mim [--dataset=Beauty]

Prints every loss component every 30 batches and the codebook utilisation at the end.
``clamp-mim`` clamps the CLUB estimate at 0 (mutual information is non-negative) and
``norm-latents`` layer-normalises every z and zbar, to test those candidate fixes without
editing the code. Used to diagnose the divergence in docs/RESULTS.md.
"""
import argparse
import time

import torch

import recbole_bbq  # noqa: F401
from recbole.data import create_dataset, data_preparation
from recbole_bbq.config import Config
from recbole_bbq.model import BBQRec
from recbole_bbq.modules import club as club_mod

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("variant", choices=["base", "clamp-mim", "norm-latents"])
parser.add_argument("--dataset", default="Beauty")
parser.add_argument("--config_files", default="benchmarks/configs/bbqrec_beauty_smoke.yaml")
args = parser.parse_args()
variant = args.variant
if variant == "norm-latents":
    from recbole_bbq.modules import bbq_tokenizer

    raw_latents = bbq_tokenizer.BBQTokenizer.latents

    def normalised(self, x, item_ids):
        z, zbar = raw_latents(self, x, item_ids)
        ln = lambda t: torch.nn.functional.layer_norm(t, t.shape[-1:])  # noqa: E731
        return {k: ln(v) for k, v in z.items()}, {k: ln(v) for k, v in zbar.items()}

    bbq_tokenizer.BBQTokenizer.latents = normalised
if variant == "clamp-mim":
    unclamped = club_mod.CLUB.mi_upper_bound
    club_mod.CLUB.mi_upper_bound = lambda self, z, zbar: unclamped(self, z, zbar).clamp(min=0)
cfg = Config("BBQRec", args.dataset, config_file_list=args.config_files.split(","),
             config_dict={"use_gpu": False, "state": "WARNING"})
train, _, _ = data_preparation(cfg, create_dataset(cfg))
torch.manual_seed(0)
model = BBQRec(cfg, train.dataset)
optimizer = torch.optim.AdamW(model.tokenizer_parameters(), lr=cfg["tokenizer_learning_rate"])
model.train()
model.tokenizer_init(train)
start = time.time()
for step, batch in enumerate(model.tokenizer_batches(train)):
    optimizer.zero_grad()
    losses = model.calculate_tokenizer_loss(batch)
    losses["loss"].backward()
    optimizer.step()
    if step % 30 == 0:
        shown = {k: f"{float(v):.3g}" for k, v in losses.items()}
        print(variant, step, shown, f"{time.time() - start:.0f}s", flush=True)
    if step == 150:
        break
model.eval()
print(variant, "utilisation", model.tokenizer_diagnostics())
