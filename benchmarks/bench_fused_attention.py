"""Fused (``F.scaled_dot_product_attention``) vs explicit-softmax plain attention, one process.

    python benchmarks/bench_fused_attention.py [--batches 12] [--threads 2] [--d_model 128 ...]

Trains the full-size generator (TIGER's: 4+4 layers, d_model 128, 6 heads x 64, FFN 1024) on
synthetic histories whose lengths follow Beauty's (1-19 items, mean about 8), alternating the
two variants batch by batch (benchmarks/_timing.py), then times batched beam search both ways.
Prints samples/s, users/s and the ratios. The two paths give the same outputs (a test checks it).
"""
from __future__ import annotations

import argparse
import time

import torch

from _timing import alternating_samples_per_s
from recbole_bbq.modules.beam_search import SemanticIDTrie, constrained_beam_search
from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from recbole_bbq.modules.generator import MultiHeadAttention


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--batches", type=int, default=12)
    args = p.parse_args(argv)
    seed_and_threads(args)
    levels = [256, 256, 256, 8]
    codes = random_id_table(levels, args.items)
    trie = SemanticIDTrie(codes)
    gen = build_generator(args, levels)
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)

    def make_batch(n):
        lengths = torch.randint(1, args.history, (n,))
        mask = torch.arange(args.history)[None, :] < lengths[:, None]
        items = torch.randint(1, args.items + 1, (n, args.history)) * mask
        target = codes[torch.randint(1, args.items + 1, (n,))]
        return codes[items], mask, target

    class Batch(tuple):
        def __len__(self):
            return len(self[0])

    batches = [Batch(make_batch(args.batch)) for _ in range(args.batches)]

    def step(fused):
        def run(batch):
            MultiHeadAttention.use_fused_kernel = fused
            hist, mask, target = batch
            opt.zero_grad()
            gen.loss(hist, mask, target).backward()
            opt.step()
        return run

    gen.train()
    step(True)(batches[0])
    step(False)(batches[0])  # warm-up both
    train = alternating_samples_per_s({"fused": step(True), "explicit": step(False)}, batches)

    gen.eval()
    hist, mask, _ = make_batch(args.eval_batch)
    beam = {}
    for fused in (True, False, True, False):
        MultiHeadAttention.use_fused_kernel = fused
        start = time.perf_counter()
        with torch.no_grad():
            constrained_beam_search(gen, hist, mask, trie, args.beam)
        beam.setdefault(fused, []).append(args.eval_batch / (time.perf_counter() - start))
    MultiHeadAttention.use_fused_kernel = True
    fused_beam, explicit_beam = max(beam[True]), max(beam[False])
    print(f"threads={torch.get_num_threads()} d_model={args.d_model} layers={args.layers}+{args.layers} "
          f"batch={args.batch} x {args.batches}")
    print(f"train samples/s: fused {train['fused']:.0f}, explicit {train['explicit']:.0f}, "
          f"ratio {train['fused'] / train['explicit']:.2f}x")
    print(f"beam search users/s (beam {args.beam}, batch {args.eval_batch}, best of 2): "
          f"fused {fused_beam:.0f}, explicit {explicit_beam:.0f}, ratio {fused_beam / explicit_beam:.2f}x")


if __name__ == "__main__":
    main()
