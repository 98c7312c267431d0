"""Probe: what a trained generator's items read as, against what its first level is scored by.

Under ``history_tokens: item`` a history item enters the encoder as the sum of its level
tokens' embeddings; with tied embeddings the first level of the next item is scored against
the level-1 token's embedding alone (``first_level_embeddings: tokens``). If the summed
embedding points mostly along the later levels' tokens, the first level is scored against a
vector the encoder hardly reads items by. This probe prints, over the catalogue, the mean
cosine between each item's level tokens and between each token and the item's sum, the
tables' mean norms, and the same split by whether the item's level-1 token is private.
It reads the checkpoint only (seconds, no data):

    python benchmarks/probe_level_embeddings.py saved/<run>.pth [saved/<run2>.pth ...] [--out probe.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq import compat  # noqa: E402


def alignment(checkpoint: str) -> dict:
    state = compat.load_checkpoint(checkpoint, map_location="cpu", what="checkpoint")["state_dict"]
    codes = state["item_codes"][1:]  # row 0 is the padding item
    n_levels = codes.shape[1]
    tables = [state[f"generator.token_emb.{lvl}.weight"] for lvl in range(n_levels)]
    tokens = [tables[lvl][codes[:, lvl]] for lvl in range(n_levels)]
    summed = torch.stack(tokens).sum(0)
    shared = torch.bincount(codes[:, 0])[codes[:, 0]] > 1

    def mean_cos(a, b, rows=slice(None)):
        return round(F.cosine_similarity(a[rows], b[rows], dim=-1).mean().item(), 3)

    return {
        "checkpoint": checkpoint,
        "items": int(codes.shape[0]),
        "level_sizes": [int(t.shape[0]) for t in tables],
        "items_with_a_shared_level_1_token": int(shared.sum()),
        "mean_norm": [round(t.norm(dim=1).mean().item(), 3) for t in tables],
        "cos_token_to_item_sum": [mean_cos(t, summed) for t in tokens],
        "cos_level_1_to_item_sum": {"private": mean_cos(tokens[0], summed, ~shared),
                                    "shared": mean_cos(tokens[0], summed, shared)},
        "cos_between_levels": {f"{a + 1}-{b + 1}": mean_cos(tokens[a], tokens[b])
                               for a in range(n_levels) for b in range(a + 1, n_levels)},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--out", default=None, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    results = [alignment(path) for path in args.checkpoints]
    for result in results:
        print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
