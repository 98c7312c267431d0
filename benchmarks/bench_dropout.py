"""Generator training steps with torch's dropout, the cheap CPU mask (modules/dropout.py) and none.

    python benchmarks/bench_dropout.py [--batch 256] [--real_items 7] [--steps 10]
        [--d_model 128 --layers 4 --heads 6 --d_head 64 --d_ff 1024] [--threads N]
    python benchmarks/bench_dropout.py --tokenizer_checkpoint=saved/TIGER-Beauty-...-tokenizer.pth \
        [--model TIGER] [--dataset Beauty] [--config_files benchmarks/configs/beauty_converged_cpu.yaml]
        [--dropout 0.1] [--steps 40] [--compare_with /tmp/dropout_before.py] [--profile 5] [--amp]

One process, one model, alternating the variants step by step over the same batches, so
machine noise hits them alike. Prints samples/s of each and their ratios. Without
``--tokenizer_checkpoint`` the batches are synthetic (random semantic IDs, ``--real_items``
real items per history, the rest padding) for a bare generator; with it, they are the first
training batches of a real dataset for ``--model`` with that stage 1 loaded (length buckets
and all, as a run trains). The cheap mask also moves training-mode attention off the fused
kernel (which would draw a bernoulli_ mask on the CPU), so the ratio is that of the whole
change. A third variant sets every dropout rate to 0 (``dropout_prob: 0``, attention on the
fused kernel): what dropout itself costs. ``--compare_with FILE`` adds a fourth variant: the
``dropout`` function of another version of ``modules/dropout.py`` (for example
``git show <commit>:recbole_bbq/modules/dropout.py > /tmp/dropout_before.py``), patched in for
its steps, so a change to the mask is measured against its predecessor in one run.
``--amp``: every step under bfloat16 autocast, as ``enable_amp`` trains (the masks are then
built in bfloat16).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads
from _timing import alternating_samples_per_s
import recbole_bbq.modules.dropout as dropout_module
from recbole_bbq.modules.dropout import Dropout


class _Batch(tuple):
    """A synthetic batch ``(history codes, mask, target codes)`` that reports its size."""

    def __len__(self):
        return len(self[0])


def synthetic(args):
    """``(module, loss(batch), batches)`` for a bare generator on random semantic IDs."""
    levels = [256, 256, 256, 4]
    codes = random_id_table(levels, args.items, unique_last_level=True)
    gen = build_generator(args, levels, dropout=args.dropout).train()

    def batch():
        items = torch.randint(1, args.items + 1, (args.batch, args.history))
        mask = torch.zeros(args.batch, args.history, dtype=torch.bool)
        mask[:, -args.real_items:] = True
        target = codes[torch.randint(1, args.items + 1, (args.batch,))]
        return _Batch((codes[items], mask, target))

    return gen, lambda b: gen.loss(*b), [batch() for _ in range(args.steps + 2)]


def real(args):
    """``(module, loss(batch), batches)`` for ``--model`` on real training batches."""
    from _real import build_with_tokenizer, first_batches
    model, train = build_with_tokenizer(args.model, args.dataset, args.config_files,
                                        args.tokenizer_checkpoint, dropout_prob=args.dropout)
    model.train()
    return model, model.calculate_loss, first_batches(train, args.steps + 2, model.device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--real_items", type=int, default=7, help="real items per synthetic history")
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    p.add_argument("--dropout", type=float, default=0.1, help="the rate of the dropout variants")
    p.add_argument("--tokenizer_checkpoint", default=None,
                   help="a saved stage 1: time real batches of --model instead of synthetic ones")
    p.add_argument("--model", default="TIGER")
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--config_files", default="benchmarks/configs/beauty_converged_cpu.yaml")
    p.add_argument("--compare_with", default=None,
                   help="another version of modules/dropout.py whose dropout() is timed too")
    p.add_argument("--profile", type=int, default=0,
                   help="then profile this many steps of this mask (torch.profiler, top ops)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    args = p.parse_args(argv)
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.amp else contextlib.nullcontext
    seed_and_threads(args)
    module, loss, batches = (real if args.tokenizer_checkpoint else synthetic)(args)
    opt = torch.optim.AdamW(getattr(module, "generator", module).parameters(), lr=1e-3)
    dropouts = [m for m in module.modules() if isinstance(m, Dropout)]

    ours = dropout_module.dropout

    def step_with(cheap, rate=args.dropout, function=ours):
        def step(b):
            Dropout.cheap_cpu_mask = cheap
            dropout_module.dropout = function  # what Dropout.forward calls
            for m in dropouts:
                m.p = rate
            opt.zero_grad()
            with amp():
                value = loss(b)
            value.backward()
            opt.step()
        return step

    steps = {"torch_dropout": step_with(False), "cheap_cpu_mask": step_with(True),
             "no_dropout": step_with(True, 0.0)}
    if args.compare_with:
        spec = importlib.util.spec_from_file_location("dropout_compared", args.compare_with)
        other = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(other)
        steps["compared_cpu_mask"] = step_with(True, function=other.dropout)
    alternating_samples_per_s(steps, batches[:2])
    rates = alternating_samples_per_s(steps, batches[2:])
    Dropout.cheap_cpu_mask = True
    dropout_module.dropout = ours
    compared = ({"cheap_cpu_mask_over_compared": round(rates["cheap_cpu_mask"] / rates["compared_cpu_mask"], 3),
                 "no_dropout_over_compared": round(rates["no_dropout"] / rates["compared_cpu_mask"], 3),
                 "compared_with": args.compare_with} if args.compare_with else {})
    print(json.dumps({
        "samples_per_s": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(rates["cheap_cpu_mask"] / rates["torch_dropout"], 3),
        "no_dropout_over_cheap_cpu_mask": round(rates["no_dropout"] / rates["cheap_cpu_mask"], 3),
        **compared,
        "threads": torch.get_num_threads(),
        "precision": "bfloat16 autocast" if args.amp else "float32",
        "batches": (f"real: {args.model} on {args.dataset}, {args.config_files}"
                    if args.tokenizer_checkpoint else "synthetic"),
        "size": {k: getattr(args, k) for k in ("d_model", "layers", "heads", "d_head", "d_ff",
                                               "batch", "history", "real_items")}
        if not args.tokenizer_checkpoint else "the model's config",
    }, indent=1))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for b in batches[2:2 + args.profile]:
                steps["cheap_cpu_mask"](b)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
