"""What torch's deterministic algorithms cost per training step (``reproducibility: True``).

    python benchmarks/bench_deterministic.py [--rounds 5] [--steps 5] [--threads 2]
        [--items 12101 --history 20 --batch 256 --d_model 64 --layers 2 --heads 4 --d_head 16 --d_ff 256]

In one process, alternating ``--rounds`` times between the two settings so that machine
noise hits both alike, it times ``--steps`` training steps (forward, backward, AdamW) of

- the generator (synthetic semantic IDs; default: the half-size generator of the Beauty CPU
  runs, ``benchmarks/configs/beauty_converged_cpu.yaml``), and
- TIGER's RQ-VAE stage 1 (768-d content, batch 1024, 3 x 256 codes),

with deterministic algorithms off and on, and prints the median step time of each and the
on/off ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from recbole_bbq.modules.rqvae import RQVAE


def timed(step, steps: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 1000 * (time.perf_counter() - start) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.set_defaults(d_model=64, layers=2, heads=4, d_head=16, d_ff=256)
    p.add_argument("--levels", type=int, nargs="+", default=[256, 256, 256, 4])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    seed_and_threads(args)

    codes = random_id_table(args.levels, args.items, unique_last_level=True)
    gen = build_generator(args, args.levels)
    gen_opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    items = torch.randint(1, args.items + 1, (args.batch, args.history))
    hist, mask = codes[items], torch.ones(args.batch, args.history, dtype=torch.bool)
    target = codes[torch.randint(1, args.items + 1, (args.batch,))]

    def generator_step():
        gen_opt.zero_grad()
        gen.loss(hist, mask, target).backward()
        gen_opt.step()

    content = torch.randn(args.items, 768)
    rqvae = RQVAE(768)
    rqvae.kmeans_init(content[:4096])
    rq_opt = torch.optim.AdamW(rqvae.parameters(), lr=1e-3)

    def rqvae_step():
        rq_opt.zero_grad()
        rqvae(content[torch.randint(0, args.items, (1024,))])["loss"].backward()
        rq_opt.step()

    gen.train()
    rqvae.train()
    times = {(what, mode): [] for what in ("generator", "rqvae") for mode in ("off", "on")}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            torch.use_deterministic_algorithms(mode == "on", warn_only=True)
            times[("generator", mode)].append(timed(generator_step, args.steps))
            times[("rqvae", mode)].append(timed(rqvae_step, args.steps))
    torch.use_deterministic_algorithms(False)
    print(f"threads {torch.get_num_threads()}, {args.rounds} rounds x {args.steps} steps, "
          f"median ms per step")
    for what in ("generator", "rqvae"):
        off = statistics.median(times[(what, "off")])
        on = statistics.median(times[(what, "on")])
        print(f"{what:10s} deterministic off {off:8.1f} ms   on {on:8.1f} ms   on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
