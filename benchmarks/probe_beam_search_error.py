"""Probe: how many test hits does beam search lose, against what the trained model itself ranks?

A generative model ranks items by ``log p(ID | history)``, and beam search keeps the best
``beam_size`` prefixes per level, so it can miss an ID the model scores highly. This probe
scores the test split of trained checkpoints at several beam sizes and, for every user, also
the exact ``log p`` of the target's ID (one teacher-forced decoder pass,
``SemanticIDGenerator.target_log_prob``). Each miss at top-10 is then one of:

* **model miss**: ten IDs the search found score above the target, so the target is outside
  the model's own top 10 whatever the search does;
* **search miss**: the target scores above the tenth ID found, so it was pruned on the way
  (or found but ranked by a tie); a search without pruning could turn at most these into
  hits (an upper bound: IDs the search never reached may also score above the target).

Pruning can also promote a target into the top 10 by missing a better ID, so a beam's
recall is not by itself a bound of the exact ranking's. The probe reports both bounds:
hits + search misses from above, and from below the **certified hits**, hits whose score
beats the best prefix the search dropped (``constrained_beam_search(...,
return_pruned_bound=True)``): no ID the search did not return can outrank them.

    python benchmarks/probe_beam_search_error.py saved/LETTER-Beauty-<run>.pth [more.pth ...] \
        [--beams 20 50] [--users 4096] [--threads 2] [--out probe.json]

Trains nothing. Works on the plugin's generative checkpoints (TIGER, LETTER, BBQRec and its
variants) that ``recbole_bbq.recommend.load_trained`` rebuilds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling probes, also when imported

from recbole_bbq.recommend import load_trained  # noqa: E402  (installs RecBole's shims first)
from recbole.data import data_preparation  # noqa: E402
from recbole_bbq.modules.beam_search import constrained_beam_search, scores_for_all_items  # noqa: E402
from probe_target_popularity import hit_and_ndcg, top_k_match  # noqa: E402  (same directory)


@torch.no_grad()
def probe_split(model, data, beams, users=None, topk=10):
    """Per beam size: recall@topk, NDCG@topk, and the misses split into model and search misses."""
    model.eval()
    counts = {k: {"hits": 0, "certified": 0, "ndcg": 0.0, "model_miss": 0, "search_miss": 0,
                  "found_below_top": 0} for k in beams}
    n_users = 0
    for interaction, _, _, positive_i in data:
        if users is not None and n_users >= users:
            break
        targets = model.item_codes[positive_i]
        for rows, seq, codes, mask in model._length_buckets(interaction):
            extra = model.generator_attention_kwargs(seq)
            target_lp = model.generator.target_log_prob(codes, mask, targets[rows], **extra)
            target = positive_i[rows]
            for k in beams:
                leaf, log_p, pruned_bound = constrained_beam_search(
                    model.generator, codes, mask, model.trie, k, return_pruned_bound=True, **extra)
                scores = scores_for_all_items(leaf, log_p, model.trie, model.n_items)
                match, top_scores, _ = top_k_match(scores, target, topk)
                # a target among -inf ties (a beam that found fewer than topk IDs) is no hit
                hit, gain = hit_and_ndcg(match & torch.isfinite(top_scores))
                tenth = top_scores[:, -1]
                c = counts[k]
                c["hits"] += int(hit.sum())
                target_found = scores.gather(1, target[:, None]).squeeze(1)
                c["certified"] += int((hit & (target_found > pruned_bound)).sum())
                c["ndcg"] += float(gain.sum())
                c["model_miss"] += int((~hit & (target_lp < tenth)).sum())
                c["search_miss"] += int((~hit & (target_lp >= tenth)).sum())
                c["found_below_top"] += int((~hit & torch.isfinite(target_found)).sum())
        n_users += len(positive_i)
    report = {}
    for k, c in counts.items():
        report[f"beam_{k}"] = {
            f"recall@{topk}": c["hits"] / n_users, f"ndcg@{topk}": c["ndcg"] / n_users,
            "model_miss_share": c["model_miss"] / n_users,
            "search_miss_share": c["search_miss"] / n_users,
            "found_but_below_top_share": c["found_below_top"] / n_users,
            f"recall@{topk}_if_every_search_miss_were_a_hit": (c["hits"] + c["search_miss"]) / n_users,
            f"recall@{topk}_certified": c["certified"] / n_users,
        }
    report["users"] = n_users
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--beams", type=int, nargs="+", default=[20, 50])
    p.add_argument("--users", type=int, default=None,
                   help="stop after the batch that reaches N test users (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    reports = []
    for checkpoint in args.checkpoints:
        trained = load_trained(checkpoint)
        model, config = trained.model, trained.config
        if not hasattr(model, "trie"):
            raise SystemExit(f"{checkpoint}: {config['model']} is not a generative model (no beam search)")
        _, _, test_data = data_preparation(config, trained.dataset)
        start = time.time()
        report = {"checkpoint": checkpoint, "model": config["model"], "seed": config["seed"],
                  "test": probe_split(model, test_data, args.beams, args.users),
                  "seconds": round(time.time() - start, 1)}
        print(json.dumps(report, indent=1), flush=True)
        reports.append(report)
    if args.out:
        Path(args.out).write_text(json.dumps(reports, indent=1) + "\n")


if __name__ == "__main__":
    main()
