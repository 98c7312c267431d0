"""Generator training throughput and beam-search throughput on synthetic semantic IDs.

    python benchmarks/bench_generator.py [--items 12101] [--history 20] [--batch 256] [--beam 20]
        [--d_model 128 --layers 4 --heads 6 --d_head 64 --d_ff 1024] [--device cpu]
        [--amp bfloat16] [--compile default|reduce-overhead]

Prints samples/s for training steps (forward + backward + Adam) and users/s for batched
constrained beam search. No data needed: random histories over a random ID table.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import time

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from recbole_bbq.modules.beam_search import SemanticIDTrie, constrained_beam_search


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--levels", type=int, nargs="+", default=[256, 256, 256, 4])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default=None, choices=["bfloat16", "float16"],
                   help="autocast the training step (as enable_amp / amp_dtype do)")
    p.add_argument("--compile", default=None, choices=["default", "reduce-overhead"],
                   help="torch.compile the loss (reduce-overhead: CUDA graphs)")
    args = p.parse_args(argv)
    seed_and_threads(args)
    device = torch.device(args.device)
    codes = random_id_table(args.levels, args.items, unique_last_level=True)
    trie = SemanticIDTrie(codes).to(device)
    gen = build_generator(args, args.levels).to(device)
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)

    def batch(n):
        items = torch.randint(1, args.items + 1, (n, args.history), device=device)
        return codes.to(device)[items], torch.ones(n, args.history, dtype=torch.bool, device=device)

    hist, mask = batch(args.batch)
    target = codes.to(device)[torch.randint(1, args.items + 1, (args.batch,), device=device)]
    loss_fn = torch.compile(gen.loss, mode=args.compile) if args.compile else gen.loss
    amp = contextlib.nullcontext
    if args.amp:
        amp = functools.partial(torch.autocast, device.type, dtype=getattr(torch, args.amp))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        opt.zero_grad()
        with amp():
            loss = loss_fn(hist, mask, target)
        loss.backward()
        opt.step()

    gen.train()
    start = time.perf_counter()
    for _ in range(3):  # warm-up (and compilation)
        step()
    sync()
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    step_ms = 1000 * (time.perf_counter() - start) / args.steps
    train_rate = args.batch / step_ms * 1000

    gen.eval()
    hist, mask = batch(args.eval_batch)
    constrained_beam_search(gen, hist[:8], mask[:8], trie, args.beam)  # warm-up
    sync()
    start = time.perf_counter()
    constrained_beam_search(gen, hist, mask, trie, args.beam)
    sync()
    beam_rate = args.eval_batch / (time.perf_counter() - start)
    print(
        f"device={device} threads={torch.get_num_threads()} history={args.history} "
        f"levels={args.levels} d_model={args.d_model} layers={args.layers}+{args.layers}\n"
        f"train: {train_rate:.0f} samples/s, {step_ms:.1f} ms/step (batch {args.batch}, "
        f"amp {args.amp or 'off'}, compile {args.compile or 'off'}, warm-up {warmup_s:.1f} s)\n"
        f"beam search: {beam_rate:.1f} users/s (beam {args.beam}, batch {args.eval_batch})"
    )
    return train_rate, beam_rate


if __name__ == "__main__":
    main()
