"""Generator training steps with torch's dropout, the cheap CPU mask (modules/dropout.py) and none.

    python benchmarks/bench_dropout.py [--batch 256] [--real_items 7] [--steps 10]
        [--d_model 128 --layers 4 --heads 6 --d_head 64 --d_ff 1024] [--threads N]

One process, one model, alternating the variants step by step over the same synthetic
batches (random semantic IDs, ``--real_items`` real items per history, the rest padding),
so machine noise hits them alike. Prints samples/s of each and their ratios. The cheap mask
also moves training-mode attention off the fused kernel (which would draw a bernoulli_ mask
on the CPU), so the ratio is that of the whole change. A third variant sets every dropout
rate to 0 (``dropout_prob: 0``, attention on the fused kernel): what dropout itself costs.
"""
from __future__ import annotations

import argparse
import json

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from _timing import alternating_samples_per_s
from recbole_bbq.modules.dropout import Dropout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--real_items", type=int, default=7, help="real items per history")
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    args = p.parse_args(argv)
    seed_and_threads(args)
    levels = [256, 256, 256, 4]
    codes = random_id_table(levels, args.items, unique_last_level=True)
    gen = build_generator(args, levels).train()
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)

    def batch():
        items = torch.randint(1, args.items + 1, (args.batch, args.history))
        mask = torch.zeros(args.batch, args.history, dtype=torch.bool)
        mask[:, -args.real_items:] = True
        target = codes[torch.randint(1, args.items + 1, (args.batch,))]
        return codes[items], mask, target

    dropouts = [m for m in gen.modules() if isinstance(m, torch.nn.Dropout)]
    built_rate = dropouts[0].p  # the generator's own rate, whatever build_generator's default

    def step_with(cheap, p=built_rate):
        def step(b):
            Dropout.cheap_cpu_mask = cheap
            for m in dropouts:
                m.p = p
            opt.zero_grad()
            gen.loss(*b).backward()
            opt.step()
        return step

    class Batch(tuple):
        def __len__(self):
            return args.batch

    warm = [Batch(batch()) for _ in range(2)]
    timed = [Batch(batch()) for _ in range(args.steps)]
    steps = {"torch_dropout": step_with(False), "cheap_cpu_mask": step_with(True),
             "no_dropout": step_with(True, 0.0)}
    alternating_samples_per_s(steps, warm)
    rates = alternating_samples_per_s(steps, timed)
    Dropout.cheap_cpu_mask = True
    ratio = rates["cheap_cpu_mask"] / rates["torch_dropout"]
    print(json.dumps({
        "samples_per_s": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(ratio, 3),
        "no_dropout_over_cheap_cpu_mask": round(rates["no_dropout"] / rates["cheap_cpu_mask"], 3),
        "threads": torch.get_num_threads(),
        "size": {k: getattr(args, k) for k in ("d_model", "layers", "heads", "d_head", "d_ff",
                                               "batch", "history", "real_items")},
    }, indent=1))


if __name__ == "__main__":
    main()
