"""Similarity attention's step time over plain attention's, for this version of the eq. 17
product and another, on Beauty-length histories (needs the ``[cornac]`` extra: it reuses
bench_vs_cornac's data loading and stage-2 stand-in, not cornac itself).

    python benchmarks/probe_similarity_combine.py [--batches 12] [--amp] [--half] \
        [--compare_with /tmp/similarity_before.py]

Histories are every user's item prefixes of the prepared Beauty data (at most 20 items),
shuffled, in batches of 256 cut into length buckets as a run does; semantic IDs and item
vectors are random (the cost does not depend on them). A plain generator and a generator
with similarity attention (``SimilarityAttention``) train on the same batches, the variants
alternated step by step in one process. ``--compare_with FILE`` adds a third variant: the
same similarity generator whose ``SimilarityAttention.combine`` is the one of another
version of ``modules/similarity_attention.py`` (for example
``git show <commit>:recbole_bbq/modules/similarity_attention.py > /tmp/similarity_before.py``).
``--half``: the half-size generator of our Beauty runs instead of the paper's size.
Prints samples/s and each similarity variant's step time over plain attention's.
"""
from __future__ import annotations

import argparse
import importlib.util
import types

import numpy as np
import torch

import bench_vs_cornac as bvc
from _timing import alternating_samples_per_s
from recbole_bbq.allocator import keep_freed_memory
from recbole_bbq.modules.similarity_attention import SimilarityAttention


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--half", action="store_true", help="the half-size generator")
    p.add_argument("--compare_with", default=None)
    p.add_argument("--data", default="dataset/Beauty")
    args = p.parse_args(argv)
    size = (dict(d_model=64, d_ff=256, heads=4, d_head=16, layers=2) if args.half
            else dict(d_model=128, d_ff=1024, heads=6, d_head=64, layers=4))
    run = types.SimpleNamespace(data=args.data, modalities=["text", "category"], batch=256,
                                history=20, beam=20, seed=0, length_buckets="auto",
                                sim_buckets=100, train_samples=100_000, **size)
    cfg = bvc.our_config(run)
    if cfg["keep_freed_memory"]:
        keep_freed_memory()
    seqs, content = bvc.load_data(run)
    rng = np.random.default_rng(0)
    levels = [256, 256, 256, 8]
    codes = np.stack([rng.integers(0, s, len(content) - 1) for s in levels], 1)
    item_codes = torch.cat([torch.full((1, len(levels)), -1), torch.as_tensor(codes)])
    vectors = torch.randn(len(content), 32)
    vectors[0] = 0
    samples = [(s[max(0, i - 20):i], s[i]) for s in seqs for i in range(1, len(s) - 2)]
    order = rng.permutation(len(samples))
    batches = []
    for b in range(args.batches + 1):  # the first: warm-up
        rows = [samples[j] for j in order[b * 256:(b + 1) * 256]]
        batches.append(bvc.interaction([h for h, _ in rows], [t for _, t in rows], 20))
    torch.manual_seed(0)
    plain = bvc.OurStage2(cfg, run, item_codes, levels, amp=args.amp)
    torch.manual_seed(0)
    sim = bvc.OurStage2(cfg, run, item_codes, levels, item_vectors=vectors, amp=args.amp)
    ours = SimilarityAttention.combine

    def with_combine(combine):
        def step(batch):
            SimilarityAttention.combine = combine
            sim.step(batch)
        return step

    steps = {"plain": plain.step, "similarity": with_combine(ours)}
    if args.compare_with:
        spec = importlib.util.spec_from_file_location("similarity_compared", args.compare_with)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        steps["similarity, compared"] = with_combine(other.SimilarityAttention.combine)
    try:
        for step in steps.values():
            step(batches[0])
        rates = alternating_samples_per_s(steps, batches[1:])
    finally:
        SimilarityAttention.combine = ours
    print(f"{'half' if args.half else 'full'} size, {'bfloat16 autocast' if args.amp else 'float32'}, "
          f"{args.batches} batches of 256, {torch.get_num_threads()} threads")
    for name, rate in rates.items():
        print(f"  {name}: {rate:.1f} samples/s, step time {rates['plain'] / rate:.3f}x plain")


if __name__ == "__main__":
    main()
