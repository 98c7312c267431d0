"""How a trained BBQRec stage 1 divides its shared codebook among the signals (a few seconds).

    python benchmarks/probe_shared_codes.py --tokenizer_checkpoint=saved/BBQRec-Beauty-...-tokenizer.pth \
        [--model BBQRec] [--dataset Beauty] [--config_files benchmarks/configs/beauty_converged_cpu.yaml]

Per signal: distinct latents among the items, codes used at each level, the nearest-neighbour
distance between distinct latents, and how many codes a k-means of that signal's latents
alone would use (what it could take with a codebook of its own; trivially all of them when it
has no more distinct latents than codes). Per level: codes used by two
signals at once. Used in docs/RESULTS.md, "Why category keeps a fifth of the shared codebook".
"""
import argparse
import itertools

import numpy as np
import torch

from _real import build_with_tokenizer
from recbole_bbq.modules.quantizer import kmeans

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tokenizer_checkpoint", required=True)
parser.add_argument("--model", default="BBQRec")
parser.add_argument("--dataset", default="Beauty")
parser.add_argument("--config_files", default="benchmarks/configs/beauty_converged_cpu.yaml")
args = parser.parse_args()

model, _ = build_with_tokenizer(args.model, args.dataset, args.config_files,
                                args.tokenizer_checkpoint)
tokenizer = model.tokenizer.eval()
items = torch.arange(1, model.n_items)
with torch.no_grad():
    latents, _ = tokenizer.latents(model._features(items), items)
codes = model.per_signal_codes()  # [signals, items, levels]
size = tokenizer.codebook_size
print(f"{args.model}: {len(items)} items, {tokenizer.n_levels} levels of {size} codes, "
      f"{'one shared codebook' if tokenizer.shared_codebook else 'one codebook per signal'}")
for i, signal in enumerate(tokenizer.signals):
    distinct = torch.unique(latents[signal].round(decimals=5), dim=0)
    gaps = torch.cdist(distinct, distinct).fill_diagonal_(float("inf")).min(1).values
    own = kmeans(distinct, size, generator=torch.Generator().manual_seed(0))
    own_used = len(torch.unique(torch.cdist(distinct, own).argmin(1)))
    used = [len(np.unique(codes[i, :, level])) for level in range(codes.shape[2])]
    print(f"  {signal}: {len(distinct)} distinct latents (norm {latents[signal].norm(dim=1).mean():.1f}, "
          f"nearest-neighbour distance median {gaps.median():.2f}); codes used per level {used}; "
          f"a k-means of its own latents would use {own_used} of {size}")
if tokenizer.shared_codebook:
    for level in range(codes.shape[2]):
        sets = {s: set(np.unique(codes[i, :, level])) for i, s in enumerate(tokenizer.signals)}
        shared = ", ".join(f"{a} & {b}: {len(sets[a] & sets[b])}"
                           for a, b in itertools.combinations(tokenizer.signals, 2))
        print(f"  level {level + 1}: codes used by two signals: {shared}")
