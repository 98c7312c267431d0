"""How cost grows with the catalogue and the history (docs/RESULTS.md, "Cost growth").

    python benchmarks/bench_cost_growth.py [--items 10000,100000,1000000] [--histories 20,50,200]
        [--device cpu] [--out docs/results/cost-growth] [--d_model 128 --layers 4 ...]

Catalogue: random semantic IDs (levels 256/256/256 plus an 8-way disambiguation level) for
each item count; prints the prefix-tree build time and size, batched beam-search users/s and
the process's peak resident memory after the search. History: training samples/s of the same
generator at each history length (every history full). Writes ``cost_growth.json`` and, with
matplotlib, ``cost_growth.png`` to ``--out``. One run, one process: compare rows of one run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import torch

from _synthetic import add_generator_args, build_generator, random_id_table
from recbole_bbq.modules.beam_search import SemanticIDTrie, constrained_beam_search

LEVELS = [256, 256, 256, 8]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _trie_mb(trie: SemanticIDTrie) -> float:
    tensors = [t for t in vars(trie).values() if isinstance(t, torch.Tensor)]
    for value in vars(trie).values():
        if isinstance(value, (list, tuple)):
            tensors += [t for t in value if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def catalogue_row(args, items: int, device) -> dict:
    torch.manual_seed(0)
    codes = random_id_table(LEVELS, items, unique_last_level=True)
    start = time.perf_counter()
    trie = SemanticIDTrie(codes).to(device)
    build_s = time.perf_counter() - start
    gen = build_generator(args, LEVELS).to(device).eval()
    n = args.eval_batch
    hist = codes[torch.randint(1, items + 1, (n, args.history))].to(device)
    mask = torch.ones(n, args.history, dtype=torch.bool, device=device)
    with torch.no_grad():
        constrained_beam_search(gen, hist[:4], mask[:4], trie, args.beam)  # warm-up
        _sync(device)
        start = time.perf_counter()
        constrained_beam_search(gen, hist, mask, trie, args.beam)
        _sync(device)
    users_per_s = n / (time.perf_counter() - start)
    return {"items": items, "trie_build_s": build_s, "trie_mb": _trie_mb(trie),
            "beam_users_per_s": users_per_s, "peak_rss_mb": _peak_rss_mb()}


def history_row(args, history: int, device) -> dict:
    torch.manual_seed(0)
    codes = random_id_table(LEVELS, 12101, unique_last_level=True).to(device)
    args_h = argparse.Namespace(**{**vars(args), "history": history})
    gen = build_generator(args_h, LEVELS).to(device).train()
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    items = torch.randint(1, codes.shape[0], (args.batch, history), device=device)
    hist, mask = codes[items], torch.ones(args.batch, history, dtype=torch.bool, device=device)
    target = codes[torch.randint(1, codes.shape[0], (args.batch,), device=device)]

    def step():
        opt.zero_grad()
        gen.loss(hist, mask, target).backward()
        opt.step()

    step()  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return {"history": history,
            "train_samples_per_s": args.steps * args.batch / (time.perf_counter() - start)}


def plot(path: str, catalogue: list, histories: list) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = [r["items"] for r in catalogue]
    axes[0].plot(x, [r["beam_users_per_s"] for r in catalogue], "o-")
    axes[0].set(xscale="log", xlabel="items", ylabel="users/s", title="beam search (batched)")
    axes[1].plot(x, [r["trie_mb"] for r in catalogue], "o-", label="prefix tree")
    axes[1].plot(x, [r["peak_rss_mb"] for r in catalogue], "s--", label="process peak RSS")
    axes[1].set(xscale="log", yscale="log", xlabel="items", ylabel="MB", title="memory")
    axes[1].legend()
    h = [r["history"] for r in histories]
    axes[2].plot(h, [r["train_samples_per_s"] for r in histories], "o-")
    axes[2].set(xlabel="history length (items)", ylabel="samples/s", title="generator training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--items_list", "--items-list", dest="items_list", default="10000,100000,1000000")
    p.add_argument("--histories", default="20,50,200")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="folder for cost_growth.json / .png")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    catalogue, histories = [], []
    for items in (int(v) for v in args.items_list.split(",")):
        catalogue.append(catalogue_row(args, items, device))
        r = catalogue[-1]
        print(f"items {items:>9,}: trie {r['trie_build_s']:.2f} s, {r['trie_mb']:.1f} MB; beam "
              f"{args.beam}: {r['beam_users_per_s']:.1f} users/s (batch {args.eval_batch}); "
              f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    for history in (int(v) for v in args.histories.split(",")):
        histories.append(history_row(args, history, device))
        print(f"history {history:>4}: {histories[-1]['train_samples_per_s']:.1f} training samples/s "
              f"(batch {args.batch})", flush=True)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        record = {"device": str(device), "threads": torch.get_num_threads(), "args": vars(args),
                  "catalogue": catalogue, "histories": histories}
        with open(os.path.join(args.out, "cost_growth.json"), "w") as fh:
            json.dump(record, fh, indent=2)
        if plot(os.path.join(args.out, "cost_growth.png"), catalogue, histories):
            print(f"plot: {os.path.join(args.out, 'cost_growth.png')}")
    return catalogue, histories


if __name__ == "__main__":
    main()
