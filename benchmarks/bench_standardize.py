"""RQ-VAE codebook use and collisions with raw vs standardised content features.

    python benchmarks/bench_standardize.py dataset/ml-100k/ml-100k.feat_text.npz [--epochs 40]

Same seed, architecture (d -> 256 -> 128 -> 32, 3 levels x 256 codes, k-means init) and
schedule (AdamW 1e-3, batch 512) for both inputs; prints utilisation and colliding items.
"""
from __future__ import annotations

import argparse

import torch

import recbole_bbq  # noqa: F401
from recbole_bbq.data.feature_store import read_feature_file
from recbole_bbq.data.features import standardize
from recbole_bbq.modules.rqvae import RQVAE
from recbole_bbq.modules.semantic_ids import codebook_utilisation, collision_stats


def train(x, epochs, seed=0):
    torch.manual_seed(seed)
    model = RQVAE(x.shape[1], [256, 128], 32, 3, 256)
    model.kmeans_init(x, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for rows in torch.randperm(len(x)).split(512):
            optimizer.zero_grad()
            model(x[rows])["loss"].backward()
            optimizer.step()
    codes = model.encode(x).numpy()
    return codebook_utilisation(codes, [256] * 3), collision_stats(codes)["colliding_items"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("feature_file")
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args(argv)
    _, values, present = read_feature_file(args.feature_file)
    raw = torch.from_numpy(values)
    inputs = {"raw": raw, "standardised": standardize(raw, torch.from_numpy(present))}
    for name, x in inputs.items():
        util, colliding = train(x, args.epochs)
        print(f"{name:>12}: utilisation {'/'.join(f'{u:.0%}' for u in util)}, "
              f"{colliding} of {len(x)} items collide")


if __name__ == "__main__":
    main()
