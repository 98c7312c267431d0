"""One of the attention's two fusions on and off, one process: the fused kernel
(``F.scaled_dot_product_attention``) against the explicit softmax (``--switch use_fused_kernel``,
the default), or q, k, v projected by one product against three (``--switch fuse_projections``).

    python benchmarks/bench_fused_attention.py [--switch fuse_projections] [--amp] [--batches 12]
        [--threads 2] [--d_model 128 ...]

Trains the full-size generator (TIGER's: 4+4 layers, d_model 128, 6 heads x 64, FFN 1024) on
synthetic histories whose lengths follow Beauty's (1-19 items, mean about 8), alternating the
two variants batch by batch (benchmarks/_timing.py), then times batched beam search both ways.
Prints samples/s, users/s and the ratios. The two paths give the same outputs (tests check
both switches). ``--amp``: training and search under bfloat16 autocast, as ``enable_amp`` and
``eval_amp_dtype`` run them.
"""
from __future__ import annotations

import argparse
import contextlib
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
    p.add_argument("--switch", default="use_fused_kernel", choices=["use_fused_kernel", "fuse_projections"],
                   help="the MultiHeadAttention class attribute turned on and off")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    args = p.parse_args(argv)
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.amp else contextlib.nullcontext
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
            setattr(MultiHeadAttention, args.switch, fused)
            hist, mask, target = batch
            opt.zero_grad()
            with amp():
                loss = gen.loss(hist, mask, target)
            loss.backward()
            opt.step()
        return run

    gen.train()
    step(True)(batches[0])
    step(False)(batches[0])  # warm-up both
    train = alternating_samples_per_s({"on": step(True), "off": step(False)}, batches)

    gen.eval()
    hist, mask, _ = make_batch(args.eval_batch)
    beam = {}
    for fused in (True, False, True, False):
        setattr(MultiHeadAttention, args.switch, fused)
        start = time.perf_counter()
        with torch.no_grad(), amp():
            constrained_beam_search(gen, hist, mask, trie, args.beam)
        beam.setdefault(fused, []).append(args.eval_batch / (time.perf_counter() - start))
    setattr(MultiHeadAttention, args.switch, True)
    beam_on, beam_off = max(beam[True]), max(beam[False])
    print(f"{args.switch} on and off, {'bfloat16 autocast' if args.amp else 'float32'}; "
          f"threads={torch.get_num_threads()} d_model={args.d_model} layers={args.layers}+{args.layers} "
          f"batch={args.batch} x {args.batches}")
    print(f"train samples/s: on {train['on']:.0f}, off {train['off']:.0f}, "
          f"ratio {train['on'] / train['off']:.2f}x")
    print(f"beam search users/s (beam {args.beam}, batch {args.eval_batch}, best of 2): "
          f"on {beam_on:.0f}, off {beam_off:.0f}, ratio {beam_on / beam_off:.2f}x")


if __name__ == "__main__":
    main()
