"""Generator training steps on the CPU in float32 against bfloat16 autocast (`enable_amp`).

    python benchmarks/bench_cpu_amp.py [--batch 256] [--real_items 7] [--steps 10] [--dropout 0.1]
        [--d_model 128 --layers 4 --heads 6 --d_head 64 --d_ff 1024] [--threads N]

What a run with ``enable_amp: True`` (and ``amp_dtype: bfloat16``, the default) does on the
CPU: RecBole's training loop wraps forward and loss in ``torch.autocast("cpu")``, the trainer
sets its type to bfloat16, the backward pass follows the forward's types and the optimizer
keeps float32 weights. CPUs with native bfloat16 dot products (AVX512_BF16, AMX) run those
matrix products at two or more times float32's rate; elsewhere oneDNN emulates them and
bfloat16 can be slower. Whether it pays is this machine's question, so this measures it.
A third variant runs attention through PyTorch's fused kernel under autocast, which the
generator avoids on the CPU (``MultiHeadAttention.fused_kernel_in_cpu_autocast``).

One process, one model, the variants alternated step by step over the same synthetic
batches (random semantic IDs, ``--real_items`` real items per history, the rest padding), so
machine noise hits them alike. The fused-kernel variant runs only with ``--dropout 0``: with
dropout, CPU attention takes the explicit path anyway. Also prints how far bfloat16's logits
lie from float32's on the same batch and the trained weights, relative to their spread.
Prints JSON.
"""
from __future__ import annotations

import argparse
import json

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from _timing import alternating_samples_per_s
from recbole_bbq.modules.generator import MultiHeadAttention


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--real_items", type=int, default=7, help="real items per history")
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    p.add_argument("--dropout", type=float, default=0.1)
    args = p.parse_args(argv)
    seed_and_threads(args)
    levels = [256, 256, 256, 4]
    codes = random_id_table(levels, args.items, unique_last_level=True)
    gen = build_generator(args, levels, dropout=args.dropout).train()
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)

    class Batch(tuple):
        def __len__(self):
            return args.batch

    def batch():
        items = torch.randint(1, args.items + 1, (args.batch, args.history))
        mask = torch.zeros(args.batch, args.history, dtype=torch.bool)
        mask[:, -args.real_items:] = True
        target = codes[torch.randint(1, args.items + 1, (args.batch,))]
        return Batch((codes[items], mask, target))

    def step_with(amp, fused_in_autocast=False):
        def step(b):
            MultiHeadAttention.fused_kernel_in_cpu_autocast = fused_in_autocast
            try:
                opt.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    loss = gen.loss(*b)
                loss.backward()
                opt.step()
            finally:
                MultiHeadAttention.fused_kernel_in_cpu_autocast = False
        return step

    steps = {"float32": step_with(False), "bfloat16_autocast": step_with(True)}
    if args.dropout == 0:
        # with dropout, CPU attention takes the explicit path whatever the switch says, so a
        # "fused" variant would time the same code twice
        steps["bfloat16_autocast_fused_kernel"] = step_with(True, fused_in_autocast=True)
    alternating_samples_per_s(steps, [batch() for _ in range(2)])
    rates = alternating_samples_per_s(steps, [batch() for _ in range(args.steps)])
    print(json.dumps({
        "samples_per_s": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(rates["bfloat16_autocast"] / rates["float32"], 3),
        "logit_relative_error": float(f"{logit_relative_error(gen, batch()):.3g}"),
        "threads": torch.get_num_threads(),
        "cpu_bf16_native": _native_bf16(),
        "size": {k: getattr(args, k) for k in ("d_model", "layers", "heads", "d_head", "d_ff",
                                               "batch", "history", "real_items", "dropout")},
    }, indent=1))


def logit_relative_error(gen, b) -> float:
    """How far bfloat16's logits lie from float32's on one batch, relative to the logits'
    own spread around their row means (eval mode: no dropout). Taken after the timed steps:
    at initialisation the logits are nearly uniform and any error looks small."""
    gen.eval()
    with torch.no_grad():
        full = torch.cat(gen(*b), dim=-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = torch.cat(gen(*b), dim=-1).float()
    gen.train()
    spread = full - full.mean(-1, keepdim=True)
    return float((low - full).norm() / spread.norm())


def _native_bf16() -> bool | None:
    """Whether the CPU reports native bfloat16 dot products (Linux only; None elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


if __name__ == "__main__":
    main()
