"""Probe: does a trained BBQRec generator use its similarity module (paper eq. 14-17)?

The Table 4 runs found BBQRec_S (no similarity module) at or above BBQRec at two seeds. This probe
tells apart three explanations on a *trained* BBQRec checkpoint, without training anything:

1. the buckets carry no signal: ``cos(v_last, v_next)`` of the stage-1 item vectors is no
   higher than ``cos(v_last, v_random)`` (printed as an AUC), or most history pairs share a
   handful of buckets;
2. the module learned nothing: ``E_sim`` stayed near its initial ones, and resetting it to
   ones (plain attention with every other trained weight kept) leaves validation metrics
   unchanged;
3. the module learned something the rest of the model leans on: resetting it costs accuracy,
   and so does feeding the buckets of *shuffled* item vectors (right shapes, wrong pairs).

    python benchmarks/probe_similarity_module.py --checkpoint saved/BBQRec-Beauty-<run>.pth \
        [--users 4096] [--threads 2] [--out probe.json]

It evaluates the first ``--users`` users of the validation split (full-catalogue ranking by
beam search, leave-one-out, R@10 / N@10 as the trainer reports them) under each variant.
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

from recbole_bbq.modules.similarity_attention import SimilarityAttention, similarity_buckets  # noqa: E402
from recbole_bbq.recommend import load_trained  # noqa: E402  (installs RecBole's shims first)
from recbole.data import data_preparation  # noqa: E402


def similarity_layers(model):
    return [m for m in model.generator.modules() if isinstance(m, SimilarityAttention)]


@torch.no_grad()
def evaluate(model, batches, topk=10):
    """Leave-one-out R@k / N@k over the given full-sort validation batches."""
    hits, ndcg, users, per_user = 0.0, 0.0, 0, []
    for interaction, _, _, positive_i in batches:
        scores = model.full_sort_predict(interaction)
        scores[:, 0] = float("-inf")
        top = scores.topk(topk, dim=1).indices
        match = top == positive_i[:, None]
        rank = match.float().argmax(1)
        found = match.any(1)
        hits += float(found.sum())
        ndcg += float((found.float() / torch.log2(rank.float() + 2.0)).sum())
        users += len(positive_i)
        per_user.append(found)
    return {"recall@10": hits / users, "ndcg@10": ndcg / users, "users": users}, torch.cat(per_user)


def paired(base_hits, other_hits) -> dict:
    """Users whose top-10 hit a variant gained or lost against the trained model."""
    return {"users_gained_hit": int((other_hits & ~base_hits).sum()),
            "users_lost_hit": int((base_hits & ~other_hits).sum())}


def shared_prefix(codes_a, codes_b):
    """Leading semantic-ID tokens two items share (0..L)."""
    same = (codes_a == codes_b).long()
    return same.cumprod(dim=1).sum(dim=1)


@torch.no_grad()
def bucket_statistics(model, batches):
    """Histogram of the buckets of distinct history pairs, and how far E_sim moved there."""
    k = model.sim_buckets
    counts = torch.zeros(k + 1, dtype=torch.long)
    auc_num, auc_den, cos_next, cos_rand = 0.0, 0, [], []
    prefix_num, prefix_next, prefix_rand = 0.0, [], []
    gen = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(model.item_vectors.float(), dim=-1)
    for interaction, _, _, positive_i in batches:
        seq = interaction[model.ITEM_SEQ]
        lengths = interaction[model.ITEM_SEQ_LEN]
        mask = seq > 0
        buckets = similarity_buckets(model.item_vectors[seq], mask, k)
        off_diagonal = (mask[:, :, None] & mask[:, None, :]) & ~torch.eye(seq.shape[1], dtype=torch.bool)
        counts += torch.bincount(buckets[off_diagonal], minlength=k + 1)
        last = seq[torch.arange(len(seq)), lengths - 1]
        random_items = torch.randint(1, model.n_items, (len(seq),), generator=gen)
        c_next = (vectors[last] * vectors[positive_i]).sum(-1)
        c_rand = (vectors[last] * vectors[random_items]).sum(-1)
        auc_num += float((c_next > c_rand).sum() + 0.5 * (c_next == c_rand).sum())
        auc_den += len(seq)
        p_next = shared_prefix(model.item_codes[last], model.item_codes[positive_i])
        p_rand = shared_prefix(model.item_codes[last], model.item_codes[random_items])
        prefix_num += float((p_next > p_rand).sum() + 0.5 * (p_next == p_rand).sum())
        prefix_next.append(p_next)
        prefix_rand.append(p_rand)
        cos_next.append(c_next)
        cos_rand.append(c_rand)
    freq = counts.double() / counts.sum()
    used = (counts > 0).nonzero().flatten().tolist()
    order = torch.argsort(counts, descending=True)
    top_share = float(freq[order[:5]].sum())
    layers = []
    for layer in similarity_layers(model):
        e = layer.sim_embedding.weight.detach().double()  # [K+1, H*dh]
        moved = (e - 1.0).norm(dim=1) / math.sqrt(e.shape[1])  # RMS distance from ones per bucket
        layers.append({
            "rms_from_ones_pair_weighted": float((moved * freq).sum()),
            "rms_from_ones_self_bucket": float(moved[k]),
            "rms_from_ones_unused_buckets": float(moved[counts == 0].mean()) if (counts == 0).any() else None,
            "mean_e_pair_weighted": float((e.mean(1) * freq).sum()),
            "mean_e_self_bucket": float(e[k].mean()),
        })
    cos_next, cos_rand = torch.cat(cos_next), torch.cat(cos_rand)
    return {
        "n_buckets": k,
        "pairs": int(counts.sum()),
        "buckets_used": len(used),
        "bucket_range_used": [min(used), max(used)] if used else None,
        "share_of_pairs_in_top5_buckets": top_share,
        "modal_bucket": int(order[0]),
        "e_sim_per_layer": layers,
        "cos_last_next_mean": float(cos_next.mean()),
        "cos_last_random_mean": float(cos_rand.mean()),
        "auc_next_over_random": auc_num / max(auc_den, 1),
        # the same question asked of the semantic IDs the generator already reads
        "shared_id_prefix_last_next_mean": float(torch.cat(prefix_next).float().mean()),
        "shared_id_prefix_last_random_mean": float(torch.cat(prefix_rand).float().mean()),
        "prefix_auc_next_over_random": prefix_num / max(auc_den, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a trained BBQRec (best) checkpoint")
    parser.add_argument("--users", type=int, default=4096, help="validation users to score")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    trained = load_trained(args.checkpoint)
    model, config = trained.model, trained.config
    if not getattr(model, "similarity_attention", False) or not similarity_layers(model):
        raise SystemExit(f"{args.checkpoint}: {config['model']} has no similarity module to probe")
    _, valid_data, _ = data_preparation(config, trained.dataset)
    batches, seen = [], 0
    for batch in valid_data:
        batches.append(batch)
        seen += len(batch[3])
        if seen >= args.users:
            break

    report = {"checkpoint": args.checkpoint, "model": config["model"],
              "buckets": bucket_statistics(model, batches)}
    layers = similarity_layers(model)
    trained_e = [layer.sim_embedding.weight.detach().clone() for layer in layers]
    trained_vectors = model.item_vectors.clone()
    variants = {}

    start = time.time()
    variants["trained"], base_hits = evaluate(model, batches)
    for layer in layers:
        layer.reset_similarity()
    variants["e_sim_reset_to_ones"], hits = evaluate(model, batches)
    variants["e_sim_reset_to_ones"].update(paired(base_hits, hits))
    for layer, e in zip(layers, trained_e):
        layer.sim_embedding.weight.data.copy_(e)
    perm = torch.randperm(model.n_items - 1, generator=torch.Generator().manual_seed(0)) + 1
    shuffled = trained_vectors.clone()
    shuffled[1:] = trained_vectors[perm]
    model.item_vectors = shuffled
    variants["item_vectors_shuffled"], hits = evaluate(model, batches)
    variants["item_vectors_shuffled"].update(paired(base_hits, hits))
    model.item_vectors = trained_vectors
    report["variants"] = variants
    report["eval_seconds"] = time.time() - start

    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
