"""Probe: how much next-item signal does each tokenizer's code carry, per signal and level?

For every consecutive pair (a, b) in the training part of the users' sequences (all items but
the last two of each user: the validation and test targets stay out), it compares how often
``a`` and ``b`` share a code with how often ``a`` and a popularity-matched random item ``b'``
(the ``b`` column shuffled) do. ``lift = P(same | next) / P(same | random)``: 1 means the
code says nothing about what a user buys next, higher means items bought one after the other
land on the same code more than chance. Measured per signal (BBQRec's ID / text / category
codes; TIGER's and LETTER's one content code) and per level, on the code alone
(``level``) and on the whole prefix up to it (``prefix``). For BBQRec it also reports the
generator's tuple tokens, which are what its generator sees.

    python benchmarks/probe_code_lift.py saved/BBQRec-Beauty-<run>.pth saved/TIGER-Beauty-<run>.pth \
        [saved/<run>-semantic_ids.tsv --dataset Beauty [--config_files a.yaml,b.yaml]] [--out lift.json]

Nothing is trained; each checkpoint's stage-1 codes are recomputed from its saved weights. A
``.tsv`` argument is a semantic-ID table (the one a stage 1 writes, or ``semantic_ids_file``'s
format), read against ``--dataset``; its columns are taken as they are (an extra level
included, if the table has one).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq.recommend import load_trained  # noqa: E402


def consecutive_training_pairs(dataset) -> np.ndarray:
    """``[P, 2]`` internal item ids of consecutive training interactions (per user, by time)."""
    frame = dataset.inter_feat  # a DataFrame: load_trained does not build() the dataset
    frame = frame.sort_values([dataset.uid_field, dataset.time_field], kind="mergesort")
    users = frame[dataset.uid_field].to_numpy()
    items = frame[dataset.iid_field].to_numpy()
    pairs = []
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    for s, e in zip(starts, ends):
        train = items[s:e - 2]  # the last two are the validation and test targets
        if len(train) >= 2:
            pairs.append(np.stack([train[:-1], train[1:]], axis=1))
    return np.concatenate(pairs)


def lift_table(codes: np.ndarray, pairs: np.ndarray, rng: np.random.Generator) -> list:
    """Per level of ``codes [n_items, L]`` (row = internal id): same-code rates and lifts."""
    a, b = pairs[:, 0], pairs[:, 1]
    b_random = rng.permutation(b)
    rows = []
    prefix_next = np.ones(len(a), dtype=bool)
    prefix_rand = np.ones(len(a), dtype=bool)
    for level in range(codes.shape[1]):
        same_next = codes[a, level] == codes[b, level]
        same_rand = codes[a, level] == codes[b_random, level]
        prefix_next &= same_next
        prefix_rand &= same_rand
        rows.append({
            "level": level + 1,
            "codes_used": int(len(np.unique(codes[1:, level]))),
            "same_next": float(same_next.mean()), "same_random": float(same_rand.mean()),
            "lift": float(same_next.mean() / max(same_rand.mean(), 1e-12)),
            "prefix_same_next": float(prefix_next.mean()),
            "prefix_same_random": float(prefix_rand.mean()),
            "prefix_lift": float(prefix_next.mean() / max(prefix_rand.mean(), 1e-12)),
        })
    return rows


def signal_codes(trained) -> dict:
    """``{signal: [n_items, L]}`` codes by internal item id (row 0 = padding, unused); the
    extra disambiguation level, which no tokenizer chose, is left out."""
    model = trained.model
    tokens = model.item_codes.cpu().numpy()
    if not hasattr(model, "per_signal_codes"):  # TIGER, LETTER: one content code per level
        return {"content": tokens[:, :int(trained.config["n_levels"])]}
    per_signal = model.per_signal_codes()  # [S, n-1, L]
    n_levels = per_signal.shape[2]
    padding = np.full((1, n_levels), -1)
    out = {name: np.concatenate([padding, codes], axis=0)
           for name, codes in zip(model.tokenizer.signals, per_signal)}
    out["generator tokens"] = tokens[:, :n_levels]
    return out


def table_codes(path: str, dataset_name: str, data_path: str, config_files=None):
    """``(dataset, {"content": codes [n_items, L]})`` from a semantic-ID table, rows by the
    dataset's internal item ids (row 0 and items the table lacks: -1). ``config_files`` load
    the dataset as a run would (field names, filters); ``data_path`` overrides theirs."""
    from recbole.data import create_dataset

    from recbole_bbq.config import Config
    from recbole_bbq.data.alignment import align_rows
    from recbole_bbq.modules.semantic_ids import read_semantic_id_table

    config = Config("SASRec", dataset_name, config_file_list=config_files,
                    config_dict={"data_path": data_path, "state": "WARNING"})
    dataset = create_dataset(config)
    tokens, codes = read_semantic_id_table(path)
    rows, missing = align_rows(tokens, list(dataset.field2id_token[dataset.iid_field]))
    if missing:
        raise SystemExit(f"{path} has no ID for {len(missing)} items of {dataset_name}")
    table = np.full((len(rows) + 1, codes.shape[1]), -1, dtype=np.int64)
    table[1:] = codes[rows]
    return dataset, {"content": table}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+",
                        help="trained generative-model checkpoints, or semantic-ID tables (.tsv)")
    parser.add_argument("--dataset", default="Beauty", help="the dataset of .tsv tables")
    parser.add_argument("--data_path", default="dataset/")
    parser.add_argument("--config_files", default=None,
                        help="comma-separated property files the .tsv tables' dataset is loaded with")
    parser.add_argument("--out", default=None, help="write the tables as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config_files = args.config_files.split(",") if args.config_files else None
    report = []
    for checkpoint in args.checkpoints:
        if checkpoint.endswith(".tsv"):
            dataset, signals = table_codes(checkpoint, args.dataset, args.data_path, config_files)
            model = "table"
        else:
            trained = load_trained(checkpoint)
            dataset, signals, model = trained.dataset, signal_codes(trained), trained.config["model"]
        pairs = consecutive_training_pairs(dataset)
        rng = np.random.default_rng(args.seed)
        entry = {"checkpoint": checkpoint, "model": model, "pairs": int(len(pairs)), "signals": {}}
        for name, codes in signals.items():
            entry["signals"][name] = lift_table(codes, pairs, rng)
        report.append(entry)
        print(f"\n{entry['model']} ({checkpoint}, {len(pairs)} consecutive training pairs)")
        print(f"{'signal':<18}{'level':>6}{'codes':>7}{'same|next':>11}{'same|rand':>11}{'lift':>7}"
              f"{'prefix|next':>13}{'prefix lift':>13}")
        for name, rows in entry["signals"].items():
            for r in rows:
                print(f"{name:<18}{r['level']:>6}{r['codes_used']:>7}{r['same_next']:>11.4f}"
                      f"{r['same_random']:>11.4f}{r['lift']:>7.2f}{r['prefix_same_next']:>13.4f}"
                      f"{r['prefix_lift']:>13.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
