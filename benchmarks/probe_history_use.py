"""Probe: does a trained sequential model use the user's history, or only item popularity?

A generator that has collapsed into predicting popular semantic IDs scores the same whatever
history it is given. This probe scores the validation split of trained checkpoints twice,
full-catalogue ranking as the trainer reports: once with every user's own history, once with
the history of the next user in the batch (``item_seq`` and its length rolled by one row).
The target stays the user's own. A model that reads the history loses most of its hits with
another user's (BBQRec: R@10 0.0806 -> 0.0024); a history-blind one keeps them. Trains nothing:

    python benchmarks/probe_history_use.py saved/TIGER-Beauty-<run>.pth [more.pth ...] \
        [--users 4096] [--threads 2] [--out probe.json]

Works on any checkpoint ``recbole_bbq.recommend.load_trained`` rebuilds (the plugin's
generative models and RecBole's sequential ones).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq.recommend import load_trained  # noqa: E402  (installs RecBole's shims first)
from recbole.data import data_preparation  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402
from probe_target_popularity import score  # noqa: E402  (same directory)


def rolled_history(interaction, model):
    """A copy of ``interaction`` whose row ``i`` carries row ``i+1``'s history (cyclically)."""
    fields = dict(interaction.interaction)  # a new Interaction: the loader's stays as it was
    for field in (model.ITEM_SEQ, model.ITEM_SEQ_LEN):
        fields[field] = torch.roll(interaction[field], shifts=-1, dims=0)
    return Interaction(fields)


def recall_at(model, data, users: int, topk: int, roll: bool) -> tuple:
    """R@k and N@k over the first ``users`` users of a full-sort split."""
    prepare = (lambda interaction: rolled_history(interaction, model)) if roll else None
    hits, ndcg, _ = score(model, data, topk, users=users, prepare=prepare)
    return float(hits.mean()), float(ndcg.mean()), int(len(hits))


def probe(checkpoint: str, users: int, topk: int) -> dict:
    trained = load_trained(checkpoint)
    model, config = trained.model, trained.config
    _, valid_data, _ = data_preparation(config, trained.dataset)
    start = time.time()
    own = recall_at(model, valid_data, users, topk, roll=False)
    other = recall_at(model, valid_data, users, topk, roll=True)
    return {
        "checkpoint": checkpoint, "model": config["model"], "seed": config["seed"],
        "users": own[2], "topk": topk,
        "own_history": {"recall": own[0], "ndcg": own[1]},
        "other_users_history": {"recall": other[0], "ndcg": other[1]},
        "other_over_own_recall": other[0] / own[0] if own[0] > 0 else None,
        "eval_seconds": time.time() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="trained checkpoints (best or -latest)")
    parser.add_argument("--users", type=int, default=4096, help="validation users scored")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reports = []
    print(f"| checkpoint | model | seed | users | R@{args.topk} own history | R@{args.topk} "
          f"another user's | ratio |")
    print("|---|---|---|---|---|---|---|")
    for checkpoint in args.checkpoints:
        r = probe(checkpoint, args.users, args.topk)
        reports.append(r)
        ratio = "-" if r["other_over_own_recall"] is None else f"{r['other_over_own_recall']:.2f}"
        print(f"| {Path(checkpoint).name} | {r['model']} | {r['seed']} | {r['users']} | "
              f"{r['own_history']['recall']:.4f} | {r['other_users_history']['recall']:.4f} | "
              f"{ratio} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
