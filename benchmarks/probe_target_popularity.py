"""Probe: where between validation and test does a trained model lose its hits?

Every converged run on Beauty scores lower on test than on validation, but not by the same
factor: test/valid R@10 is 0.81 for SASRec, 0.71-0.77 for GRU4Rec, TIGER, LETTER and
BBQRec_noRec, and 0.67-0.73 for BBQRec and its other variants (docs/RESULTS.md). One
candidate cause is in the data: test targets are rarer in the training split than validation
targets (median 12 against 15 training interactions; 7.3 % against 4.3 % of targets have at
most 2). A model whose item representation is learnt from training co-occurrence (BBQRec's ID
signal) could lose more on rare items than one built on content (TIGER).

This probe scores the full validation and test splits of trained checkpoints (full-catalogue
ranking, leave-one-out, as the trainer reports) and splits every user's R@10 hit by how often
the target item occurs in the training split, trains nothing:

    python benchmarks/probe_target_popularity.py saved/BBQRec-Beauty-<run>.pth \
        saved/TIGER-Beauty-<run>.pth [--threads 2] [--out probe.json]

Printed per checkpoint: R@10 and N@10 on each split, how popular the recommended top 10
are, and per popularity bucket the share of targets in it and R@10 on each split.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq.recommend import load_trained  # noqa: E402  (installs RecBole's shims first)
from recbole.data import data_preparation  # noqa: E402

BUCKETS = [(0, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, None)]


def training_counts(dataset) -> np.ndarray:
    """Interactions of every item in the training split (each user's all but last two)."""
    inter = dataset.inter_feat  # read before data_preparation, which rebuilds it
    users = np.asarray(inter[dataset.uid_field])
    items = np.asarray(inter[dataset.iid_field])
    times = np.asarray(inter[dataset.time_field]) if dataset.time_field else np.arange(len(users))
    order = np.lexsort((times, users))
    users, items = users[order], items[order]
    # position from the end of each user's sequence: 0 = test target, 1 = validation target
    last = np.r_[users[1:] != users[:-1], True]
    from_end = np.zeros(len(users), dtype=np.int64)
    for i in range(len(users) - 2, -1, -1):
        from_end[i] = 0 if last[i] else from_end[i + 1] + 1
    return np.bincount(items[from_end >= 2], minlength=dataset.item_num)


@torch.no_grad()
def top_k_match(scores, target, topk=10):
    """``[rows, topk]`` bool: where each row's target sits among its ``topk`` best items
    (item 0, padding, never counts), those items' scores and the items themselves."""
    scores[:, 0] = float("-inf")
    top_scores, top = scores.topk(topk, dim=1)
    return top == target[:, None], top_scores, top


def hit_and_ndcg(match):
    """Per-row hit@k and NDCG@k (one relevant item) from :func:`top_k_match`'s matches."""
    found = match.any(1)
    rank = match.float().argmax(1)
    return found, found.float() / torch.log2(rank.float() + 2.0)


def score(model, data, topk=10, users=None, prepare=None, recommended=None):
    """Per-user hit@k and NDCG@k and the target items, over one full-sort split (its first
    ``users`` users if given; ``prepare`` may rewrite each batch before it is scored). A list
    passed as ``recommended`` receives each batch's ``[rows, topk]`` recommended items."""
    hits, ndcg, targets = [], [], []
    for interaction, _, _, positive_i in data:
        if users is not None and sum(len(t) for t in targets) >= users:
            break
        batch = prepare(interaction) if prepare is not None else interaction
        scores = model.full_sort_predict(batch).view(len(positive_i), -1)
        match, top_scores, top = top_k_match(scores, positive_i, topk)
        if recommended is not None:  # a slot no item filled (score -inf) counts as item 0
            recommended.append(top.masked_fill(~torch.isfinite(top_scores), 0))
        found, gain = hit_and_ndcg(match)
        hits.append(found)
        ndcg.append(gain)
        targets.append(positive_i)
    if recommended:
        recommended[:] = [torch.cat(recommended)[:users]]
    return (torch.cat(hits)[:users].numpy(), torch.cat(ndcg)[:users].numpy(),
            torch.cat(targets)[:users].numpy())


def recommended_popularity(top: np.ndarray, counts: np.ndarray) -> dict:
    """What a model puts in its top 10: how popular those items are in the training split
    (median count, share of slots held by items with > 50 and with <= 5 interactions) and
    how many distinct items fill them. Slots holding item 0 (none filled them) are left out."""
    top = top[top > 0]
    top_counts = counts[top]
    return {"median_train_count": float(np.median(top_counts)),
            "share_over_50": float((top_counts > 50).mean()),
            "share_at_most_5": float((top_counts <= 5).mean()),
            "distinct_items": int(len(np.unique(top)))}


def probe(checkpoint: str) -> dict:
    trained = load_trained(checkpoint)
    model, config = trained.model, trained.config
    counts = training_counts(trained.dataset)
    _, valid_data, test_data = data_preparation(config, trained.dataset)
    report = {"checkpoint": checkpoint, "model": config["model"], "seed": config["seed"]}
    start = time.time()
    per_split = {}
    for split, data in (("valid", valid_data), ("test", test_data)):
        recommended = []
        hits, ndcg, targets = score(model, data, recommended=recommended)
        per_split[split] = (hits, counts[targets])
        report[split] = {"recall@10": float(hits.mean()), "ndcg@10": float(ndcg.mean()),
                         "users": int(len(hits)),
                         "recommended": recommended_popularity(torch.cat(recommended).numpy(),
                                                               counts)}
    report["test_over_valid_recall@10"] = report["test"]["recall@10"] / report["valid"]["recall@10"]
    rows = []
    for low, high in BUCKETS:
        row = {"train_count": f"{low}-{high}" if high is not None else f">{low - 1}"}
        for split, (hits, target_counts) in per_split.items():
            inside = (target_counts >= low) & (target_counts <= (high if high is not None else 1 << 62))
            row[f"{split}_share"] = float(inside.mean())
            row[f"{split}_recall@10"] = float(hits[inside].mean()) if inside.any() else None
        rows.append(row)
    report["by_target_train_count"] = rows
    report["eval_seconds"] = time.time() - start
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="trained (best) checkpoints")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reports = []
    for checkpoint in args.checkpoints:
        r = probe(checkpoint)
        reports.append(r)
        print(f"\n{r['model']} (seed {r['seed']}) {checkpoint}: valid R@10 {r['valid']['recall@10']:.4f} "
              f"N@10 {r['valid']['ndcg@10']:.4f}, test R@10 {r['test']['recall@10']:.4f} "
              f"N@10 {r['test']['ndcg@10']:.4f}, test/valid R@10 {r['test_over_valid_recall@10']:.2f} "
              f"({r['eval_seconds']:.0f} s)")
        for split in ("valid", "test"):
            rec = r[split]["recommended"]
            print(f"{split} top 10: median training count {rec['median_train_count']:.0f}, "
                  f"{rec['share_over_50']:.3f} of slots > 50, {rec['share_at_most_5']:.3f} <= 5, "
                  f"{rec['distinct_items']} distinct items")
        print("| target's training interactions | valid share | valid R@10 | test share | test R@10 |")
        print("|---|---|---|---|---|")
        for row in r["by_target_train_count"]:
            cells = [f"{row['valid_share']:.3f}",
                     "-" if row["valid_recall@10"] is None else f"{row['valid_recall@10']:.4f}",
                     f"{row['test_share']:.3f}",
                     "-" if row["test_recall@10"] is None else f"{row['test_recall@10']:.4f}"]
            print(f"| {row['train_count']} | " + " | ".join(cells) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
