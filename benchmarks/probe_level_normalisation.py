"""Probe: how much does a trained generator lose to probability mass on IDs that do not exist?

A generative recommender is trained with one cross-entropy per level over the level's whole
vocabulary, so ``p(c_l | c_<l, history)`` also covers tokens that no item continues with
after ``c_<l``. The beam search ranks items by the product of those full-vocabulary
probabilities (``log p(ID | history)``, the model's own score). For BBQRec, whose level
tokens are near-private tuples (a level-1 token has one child for most items), every level
after the first must *memorise* the catalogue's trie: whatever mass a level leaks onto
non-existent continuations is a penalty on that item, largest for rarely trained items.

This probe scores the same trained checkpoint two ways, without training anything:

* ``model``: the search as trained and evaluated (``level_scores="model"``);
* ``children``: each level's softmax restricted to the node's valid children
  (``level_scores="children"``), so a one-child level costs nothing;

and reports, for the split's targets, the mean ``log p`` per level under each, the mass each
level puts on the target node's valid children, and the share of target paths whose level
has a single child. If ``children`` ranks much better, the per-level objective's leak onto
non-existent IDs is where recall goes; if the two tie, it is not.

With ``--atomic saved/<atomic-ID run>.pth`` (a generator trained on one private token per item,
``benchmarks/atomic_ids.py``) it also compares the first level with that control target by
target: the target's level-1 log p against the control's log p of the same item, and of the
group of items sharing the target's level-1 token (the control's probability summed over the
group), separately for targets whose level-1 token is private and shared.

    python benchmarks/probe_level_normalisation.py saved/<run>.pth [saved/<run2>.pth ...] \\
        [--atomic saved/<atomic run>.pth] [--split valid|test] [--users 100000] [--threads 2] [--out probe.json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq.recommend import load_trained  # noqa: E402  (installs RecBole's shims first)
from recbole.data import data_preparation  # noqa: E402
from probe_target_popularity import hit_and_ndcg, top_k_match  # noqa: E402  (same directory)

TOPK = (5, 10)


@torch.no_grad()
def ranking_metrics(model, batches, level_scores):
    """R@k / N@k (k = 5, 10) of the full-catalogue beam search under ``level_scores``, and
    every user's hit@10."""
    model.beam_level_scores = level_scores
    try:
        sums = {f"{m}@{k}": 0.0 for k in TOPK for m in ("recall", "ndcg")}
        hits10 = []
        for interaction, _, _, positive_i in batches:
            match, _, _ = top_k_match(model.full_sort_predict(interaction), positive_i, max(TOPK))
            for k in TOPK:
                found, gain = hit_and_ndcg(match[:, :k])
                sums[f"recall@{k}"] += float(found.sum())
                sums[f"ndcg@{k}"] += float(gain.sum())
            hits10.append(hit_and_ndcg(match)[0])
    finally:
        model.beam_level_scores = "model"
    hits10 = torch.cat(hits10)
    return {k: v / len(hits10) for k, v in sums.items()}, hits10


@torch.no_grad()
def teacher_forced_logits(model, batches):
    """Per length bucket of every batch: the batch's targets, the bucket's rows and the
    generator's teacher-forced logits per level for those rows' targets."""
    for interaction, _, _, positive_i in batches:
        targets = model.item_codes[positive_i]
        for rows, seq, codes, mask in model._length_buckets(interaction):
            yield positive_i, rows, targets[rows], model.generator(
                codes, mask, targets[rows], **model.generator_attention_kwargs(seq))


def target_levels(model, batches):
    """Per level, over the targets: mean log p (full vocabulary), mean log p restricted to the
    node's children, mean log of the mass on the valid children, share of one-child nodes."""
    trie = model.trie
    L = trie.n_levels
    acc = {k: [0.0] * L for k in ("log_p", "log_p_children", "log_mass_on_children", "one_child")}
    for _, rows, targets, logits in teacher_forced_logits(model, batches):
        node = torch.zeros(len(rows), dtype=torch.long)
        for l, lg in enumerate(logits):
            lp = torch.log_softmax(lg.float(), dim=-1)
            cc, ci = trie.children_codes[l][node], trie.children_ids[l][node]
            valid = cc >= 0
            child_lp = lp.gather(1, cc.clamp(min=0)).masked_fill(~valid, float("-inf"))
            mass = torch.logsumexp(child_lp, dim=1)
            tgt = targets[:, l]
            j = (cc == tgt[:, None]).float().argmax(1, keepdim=True)
            acc["log_p"][l] += float(lp.gather(1, tgt[:, None]).sum())
            acc["log_p_children"][l] += float((child_lp.gather(1, j).squeeze(1) - mass).sum())
            acc["log_mass_on_children"][l] += float(mass.sum())
            acc["one_child"][l] += float((valid.sum(1) == 1).sum())
            node = ci.gather(1, j).squeeze(1)
    n = sum(len(batch[3]) for batch in batches)
    return {k: [round(v / n, 4) for v in vals] for k, vals in acc.items()}


def load_split(checkpoint, split, users, batch_size):
    """The trained model and the first ``users`` users' full-sort batches of ``split``."""
    trained = load_trained(checkpoint)
    model, config = trained.model, trained.config
    config["eval_batch_size"] = batch_size
    _, valid_data, test_data = data_preparation(config, trained.dataset)
    batches, seen = [], 0
    for batch in valid_data if split == "valid" else test_data:
        batches.append(batch)
        seen += len(batch[3])
        if seen >= users:
            break
    return model, config, batches


def first_level_log_probs(model, batches):
    """``[n_users, level_sizes[0]]`` teacher-forced level-1 log-probabilities, and the targets."""
    rows_out, targets_out, current = [], [], None
    for positive_i, rows, _, logits in teacher_forced_logits(model, batches):
        if positive_i is not current:  # a new batch
            current = positive_i
            rows_out.append(torch.empty(len(positive_i), model.generator.level_sizes[0]))
            targets_out.append(positive_i)
        rows_out[-1][rows] = torch.log_softmax(logits[0].float(), dim=-1)
    return torch.cat(rows_out), torch.cat(targets_out)


def against_atomic(model, batches, atomic, atomic_batches):
    """Mean level-1 log p of the targets against the atomic control's, for private and shared
    level-1 tokens (see the module docstring)."""
    atomic_codes = atomic.item_codes[1:, 0]
    if len(atomic.generator.level_sizes) != 1 or len(atomic_codes.unique()) != len(atomic_codes):
        raise ValueError("--atomic needs a run on atomic IDs (one level, one token per item; "
                         "benchmarks/atomic_ids.py)")
    lp, items = first_level_log_probs(model, batches)
    atomic_lp, atomic_items = first_level_log_probs(atomic, atomic_batches)
    if not torch.equal(items, atomic_items):
        raise ValueError("the atomic checkpoint's split holds other targets (another dataset?)")
    first = model.item_codes[:, 0]
    n_tokens = model.generator.level_sizes[0]
    group_size = torch.bincount(first[1:], minlength=n_tokens)
    # the control's probability of every level-1 group: its item probabilities summed per token
    item_lp = atomic_lp[:, atomic.item_codes[1:, 0]]  # [users, items 1..n-1]
    group_p = torch.zeros(len(items), n_tokens).index_add_(1, first[1:], item_lp.exp())
    token = first[items]
    rows = torch.arange(len(items))
    mine, group = lp[rows, token], group_p[rows, token].clamp_min(1e-30).log()
    item = atomic_lp[rows, atomic.item_codes[items, 0]]
    report = {}
    def mean(values):  # None, not NaN, where no target falls in the group (valid JSON)
        return round(float(values.float().mean()), 4) if len(values) else None

    for name, sel in (("private", group_size[token] == 1), ("shared", group_size[token] > 1)):
        report[name] = {"targets": int(sel.sum()), "level1_log_p": mean(mine[sel]),
                        "atomic_group_log_p": mean(group[sel]), "atomic_item_log_p": mean(item[sel]),
                        "share_above_atomic_group": mean(mine[sel] > group[sel])}
    return report


def probe(checkpoint, split, users, batch_size, atomic=None):
    model, config, batches = load_split(checkpoint, split, users, batch_size)
    report = {"checkpoint": checkpoint, "model": config["model"], "split": split,
              "users": sum(len(b[3]) for b in batches), "beam_size": model.beam_size,
              "level_sizes": list(model.trie.level_sizes)}
    t0 = time.perf_counter()
    report["levels"] = target_levels(model, batches)
    base, base_hits = ranking_metrics(model, batches, "model")
    other, other_hits = ranking_metrics(model, batches, "children")
    report["scores_model"] = {k: round(v, 4) for k, v in base.items()}
    report["scores_children"] = {k: round(v, 4) for k, v in other.items()}
    report["children_over_model"] = {k: round(other[k] / base[k], 4) if base[k] else math.nan
                                     for k in base}
    report["users_gained_hit@10"] = int((other_hits & ~base_hits).sum())
    report["users_lost_hit@10"] = int((base_hits & ~other_hits).sum())
    if atomic is not None:
        report["atomic_checkpoint"] = atomic
        report["level1_against_atomic"] = against_atomic(
            model, batches, *load_split(atomic, split, users, batch_size)[::2])
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="trained generative-model checkpoints")
    parser.add_argument("--atomic", default=None,
                        help="an atomic-ID control's checkpoint to compare level 1 with")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--users", type=int, default=100000, help="first users of the split")
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the reports as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reports = []
    for checkpoint in args.checkpoints:
        reports.append(probe(checkpoint, args.split, args.users, args.batch_size, args.atomic))
        print(json.dumps(reports[-1], indent=2), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
