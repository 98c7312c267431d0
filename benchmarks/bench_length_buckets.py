"""Training-step speed with and without length bucketing, on a prepared dataset, one process.

    python benchmarks/bench_length_buckets.py --dataset=Beauty [--stage=generator|tokenizer] \
        [--config_files=...] [--batches=20] [--chunks 4 [8 ...]] [--split auto least_padding equal] [--amp]

``--stage=generator`` (default) builds the configured TIGER with random semantic IDs (no
stage 1 needed) and times its forward + backward + optimiser steps; ``--stage=tokenizer``
builds BBQRec (k-means initialised) and times stage-1 steps, where bucketing applies to the
contrastive task's histories. Both run on the same RecBole training batches with 1 and each
``--chunks`` count of length-sorted chunks, cut each way ``--split`` names (``auto``, the
default of modules/length_buckets.py; where they pad least; into equal row counts),
alternating, and print samples/s for each and its ratio to 1 chunk. ``--amp``: every step
under bfloat16 autocast, as ``enable_amp`` trains.
On a GPU the step is bound by kernel launches and 1 chunk is faster (``length_buckets:
auto``); on a CPU, chunks save arithmetic.
"""
from __future__ import annotations

import argparse
import contextlib
import functools

import numpy as np
import torch

import recbole_bbq  # noqa: F401
from recbole.data import create_dataset, data_preparation
from recbole_bbq.allocator import keep_freed_memory
from recbole_bbq.config import Config
from recbole_bbq.model import BBQRec, TIGER
from recbole_bbq.modules import length_buckets
from recbole_bbq.modules.semantic_ids import build_semantic_ids

from _real import first_batches
from _timing import alternating_samples_per_s


def generator_step(config, train, amp):
    model = TIGER(config, train.dataset).to(config["device"])
    rng = np.random.default_rng(0)
    codes = rng.integers(0, config["codebook_size"], size=(model.n_items - 1, config["n_levels"]))
    sem = build_semantic_ids(codes, [config["codebook_size"]] * config["n_levels"])
    model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
    optimizer = torch.optim.AdamW(model.generator.parameters(), lr=1e-3)

    def step(buckets, split="auto"):
        def run(batch):
            model.length_buckets, length_buckets.SPLIT = buckets, split
            optimizer.zero_grad()
            with amp():
                loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
        return run

    return model, step


def tokenizer_step(config, train, amp):
    model = BBQRec(config, train.dataset).to(config["device"])
    model.tokenizer_init(train)
    optimizer = torch.optim.AdamW(model.tokenizer_parameters(), lr=1e-3)

    def step(buckets, split="auto"):
        def run(batch):
            model.tokenizer.length_buckets, length_buckets.SPLIT = buckets, split
            optimizer.zero_grad()
            with amp():
                loss = model.calculate_tokenizer_loss(batch)["loss"]
            loss.backward()
            optimizer.step()
        return run

    return model, step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--stage", choices=["generator", "tokenizer"], default="generator")
    p.add_argument("--config_files", default="benchmarks/configs/beauty_cpu.yaml")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--chunks", type=int, nargs="+", default=[4])
    p.add_argument("--split", nargs="+", default=["auto"], choices=["auto", "least_padding", "equal"])
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    args = p.parse_args(argv)
    name = "TIGER" if args.stage == "generator" else "BBQRec"
    config = Config(name, args.dataset, config_file_list=args.config_files.split(","),
                    config_dict={"use_gpu": torch.cuda.is_available(), "state": "WARNING"})
    amp = (functools.partial(torch.autocast, torch.device(config["device"]).type, dtype=torch.bfloat16)
           if args.amp else contextlib.nullcontext)
    if config["keep_freed_memory"]:
        keep_freed_memory()  # as a run does
    train, _, _ = data_preparation(config, create_dataset(config))
    torch.manual_seed(0)
    model, step = (generator_step if args.stage == "generator" else tokenizer_step)(config, train, amp)
    batches = first_batches(train, args.batches, config["device"])
    model.train()
    variants = {"1 chunk": step(1)}
    for c in dict.fromkeys(args.chunks):
        for split in args.split:
            variants[f"{c} chunks, {split}"] = step(c, split)
    for run in variants.values():
        run(batches[0])  # warm-up (allocator, kernels)
    rate = alternating_samples_per_s(variants, batches)
    n = sum(len(b) for b in batches)
    lengths = torch.cat([b[model.ITEM_SEQ_LEN] for b in batches]).float()
    print(f"{args.dataset}, {args.stage} stage on {config['device']} ({torch.get_num_threads()} "
          f"threads{', bfloat16 autocast' if args.amp else ''}): {n} samples, mean history "
          f"{lengths.mean():.1f} of {model.max_seq_length}")
    for name, r in rate.items():
        print(f"{name}: {r:.0f} samples/s ({r / rate['1 chunk']:.2f}x)")


if __name__ == "__main__":
    main()
