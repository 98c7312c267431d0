"""Training-step speed with and without length bucketing, on a prepared dataset, one process.

    python benchmarks/bench_length_buckets.py --dataset=Beauty [--config_files=...] [--batches=20]

Builds the configured TIGER with random semantic IDs (no stage 1 needed), then times forward
+ backward + optimiser steps on the same RecBole training batches with ``length_buckets``
1 and 4, alternating, and prints samples/s for each and their ratio.
"""
from __future__ import annotations

import argparse
import numpy as np
import torch

import recbole_bbq  # noqa: F401
from recbole.data import create_dataset, data_preparation
from recbole_bbq.config import Config
from recbole_bbq.model import TIGER
from recbole_bbq.modules.semantic_ids import build_semantic_ids

from _timing import alternating_samples_per_s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--config_files", default="benchmarks/configs/tiger_beauty_cpu.yaml")
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args(argv)
    config = Config("TIGER", args.dataset, config_file_list=args.config_files.split(","),
                    config_dict={"use_gpu": torch.cuda.is_available(), "state": "WARNING"})
    train, _, _ = data_preparation(config, create_dataset(config))
    model = TIGER(config, train.dataset).to(config["device"])
    rng = np.random.default_rng(0)
    codes = rng.integers(0, config["codebook_size"], size=(model.n_items - 1, config["n_levels"]))
    sem = build_semantic_ids(codes, [config["codebook_size"]] * config["n_levels"])
    model.set_semantic_ids(sem.codes, sem.level_sizes, sem.stats)
    optimizer = torch.optim.AdamW(model.generator.parameters(), lr=1e-3)
    batches = []
    for batch in train:
        batches.append(batch.to(config["device"]))
        if len(batches) == args.batches:
            break
    model.train()

    def step(buckets):
        def run(batch):
            model.length_buckets = buckets
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
        return run

    rate = alternating_samples_per_s({1: step(1), 4: step(4)}, batches)
    n = sum(len(b) for b in batches)
    lengths = torch.cat([b[model.ITEM_SEQ_LEN] for b in batches]).float()
    print(f"{args.dataset}: {n} samples, mean history {lengths.mean():.1f} of {model.max_seq_length}")
    print(f"length_buckets=1: {rate[1]:.0f} samples/s; length_buckets=4: {rate[4]:.0f} samples/s; "
          f"speed-up {rate[4] / rate[1]:.2f}x")


if __name__ == "__main__":
    main()
