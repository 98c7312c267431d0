"""Generator cost of BBQRec's similarity-enhanced attention vs plain attention, one process.

    python benchmarks/bench_similarity_attention.py --dataset=Beauty \
        --tokenizer_checkpoint=saved/BBQRec-Beauty-...-tokenizer.pth \
        [--config_files=benchmarks/configs/beauty_cpu.yaml] [--batches=60] [--amp] \
        [--set history_tokens=levels ...]

Builds BBQRec (similarity attention) and BBQRec_S (plain attention) from the same saved
tokenizer, so both generators see identical semantic IDs, then times forward + backward +
optimiser steps on the same RecBole training batches, alternating the two models batch by
batch so machine noise hits both alike. Prints samples/s for each, their ratio, and the
implied time of a full training epoch. ``--amp`` adds each model under bfloat16 autocast
(what ``enable_amp: True`` runs on the CPU), alternated with the other two, and prints the
speed-up of bfloat16 over float32 for both. ``--set key=value`` (repeatable, read as the
command line reads ``--key=value``) overrides a config key of both models, e.g. the encoder's
history layout.
"""
from __future__ import annotations

import argparse

import torch

from _real import build_with_tokenizer, first_batches, set_overrides
from _timing import alternating_samples_per_s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--config_files", default="benchmarks/configs/beauty_cpu.yaml")
    p.add_argument("--tokenizer_checkpoint", required=True)
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--amp", action="store_true", help="also time bfloat16 autocast")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for both models (repeatable)")
    args = p.parse_args(argv)
    overrides = set_overrides(p, args.set)
    models = {}
    for name in ("BBQRec", "BBQRec_S"):
        model, train = build_with_tokenizer(name, args.dataset, args.config_files,
                                            args.tokenizer_checkpoint, **overrides)
        models[name] = (model, torch.optim.AdamW(model.generator.parameters(), lr=1e-3))
    batches = first_batches(train, args.batches, models["BBQRec"][0].device)

    def step(name, amp=False):
        model, optimizer = models[name]

        def run(batch):
            model.train()
            optimizer.zero_grad()
            with torch.autocast(torch.device(model.device).type, dtype=torch.bfloat16, enabled=amp):
                loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
        return run

    variants = {name: step(name) for name in models}
    if args.amp:
        variants.update({f"{name}+bf16": step(name, amp=True) for name in models})
    alternating_samples_per_s(variants, batches[:2])  # untimed: first-call set-up of each path
    rate = alternating_samples_per_s(variants, batches)
    n = sum(len(b) for b in batches)
    epoch = len(train.dataset)
    for name in variants:
        print(f"{name}: {rate[name]:.0f} samples/s -> {epoch / rate[name]:.0f} s per epoch "
              f"of {epoch} samples")
    print(f"similarity / plain time per step: {rate['BBQRec_S'] / rate['BBQRec']:.2f}x "
          f"({n} samples in {len(batches)} batches, alternating, one process, "
          f"{torch.get_num_threads()} threads)")
    if args.amp:
        for name in models:
            print(f"{name}: bfloat16 autocast / float32 speed: {rate[name + '+bf16'] / rate[name]:.2f}x")
        print(f"similarity / plain time per step under bfloat16: "
              f"{rate['BBQRec_S+bf16'] / rate['BBQRec+bf16']:.2f}x")


if __name__ == "__main__":
    main()
