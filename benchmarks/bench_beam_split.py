"""Beam search over a real test split, as RecBole's evaluator calls it: users/s, the projected
time of the whole split, and (``--amp``) bfloat16 autocast against float32.

    python benchmarks/bench_beam_split.py --tokenizer_checkpoint=saved/TIGER-Beauty-...-tokenizer.pth \
        [--model TIGER] [--dataset Beauty] \
        [--config_files benchmarks/configs/beauty_converged_cpu.yaml,benchmarks/configs/generator_full_size.yaml] \
        [--batches 8] [--eval_batch 256] [--amp] [--compare_split] [--compare_fill] [--profile 2] \
        [--phases 2] [--set history_tokens=levels ...]
    python benchmarks/bench_beam_split.py --checkpoint=saved/LETTER-Beauty-...pth --amp [--batches 0]

With ``--tokenizer_checkpoint`` the generator is built at the configured size with seeded
random weights: the search's cost does not depend on what the weights learned (the same
beams, levels and prefix tree are walked); ``--set key=value`` (repeatable, read as
the command line reads ``--key=value``) overrides a config key of that model, e.g. the encoder's history layout. With ``--checkpoint`` a trained model is loaded, so
``--amp`` also reports what bfloat16 changes in the answers: the share of users whose top-10
differs from float32's, and recall/NDCG@10 of both. ``--compare_split`` also times each
variant with the length buckets cut into equal row counts instead of the default cut (where
they pad least, or equal counts under CPU autocast: so the bfloat16 pair then times one cut
twice). ``--compare_fill`` also times each variant with deterministic mode's NaN fill of every
new tensor switched back on (``torch.utils.deterministic.fill_uninitialized_memory``; runs
switch it off). ``--phases N`` times N batches per variant by phase: the history's encoding,
each level's decoder step (its logits included), and the rest (each level's log-softmax, the
beam bookkeeping, the score matrix). ``--batches 0`` runs the whole split.
Batches are the test loader's own (``eval_batch`` users, RecBole's full-sort collation); the
variants alternate batch by batch in one process, so machine noise hits them alike.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import time

import torch

from _synthetic import seed_and_threads
from recbole_bbq.modules import length_buckets

CONFIGS = "benchmarks/configs/beauty_converged_cpu.yaml,benchmarks/configs/generator_full_size.yaml"


def load(args, overrides):
    """``(model, test_loader)`` for a trained checkpoint or a seeded model on a saved stage 1."""
    from recbole.data import data_preparation

    if args.checkpoint:
        from recbole_bbq.recommend import load_trained
        trained = load_trained(args.checkpoint)
        trained.config["eval_batch_size"] = args.eval_batch
        _, _, test = data_preparation(trained.config, trained.dataset)
        return trained.model, test
    from _real import build_with_tokenizer
    overrides = {**overrides, "eval_batch_size": args.eval_batch}
    model, _, test = build_with_tokenizer(args.model, args.dataset, args.config_files,
                                          args.tokenizer_checkpoint, with_test=True, **overrides)
    return model.eval(), test


@contextlib.contextmanager
def equal_split(amp):
    """``amp()`` with length buckets of equal row counts (modules/length_buckets.py SPLIT;
    the other variants run its default, ``auto``)."""
    previous, length_buckets.SPLIT = length_buckets.SPLIT, "equal"
    try:
        with amp():
            yield
    finally:
        length_buckets.SPLIT = previous


@contextlib.contextmanager
def nan_filled(amp):
    """``amp()`` with deterministic mode filling every new tensor with NaN first, as it did
    before runs switched that off (recbole_bbq/trainer/checkpoint.py, ``seed_everything``).
    Only the fill is switched: deterministic mode itself is on in both variants, as in a
    run (the model's seeding at the stage-1 load turns it on)."""
    if not torch.are_deterministic_algorithms_enabled():
        raise RuntimeError("--compare_fill: deterministic mode is off, so there is no fill to time")
    switch = torch.utils.deterministic
    was_filling, switch.fill_uninitialized_memory = switch.fill_uninitialized_memory, True
    try:
        with amp():
            yield
    finally:
        switch.fill_uninitialized_memory = was_filling


@contextlib.contextmanager
def phase_timer(generator, seconds):
    """Add the wall time of ``generator``'s encoding and of each level's decoder step to
    ``seconds`` (its two methods wrapped on the instance, the class's restored on exit).
    CPU timings: on a GPU the kernels run asynchronously, so the times would land in
    whichever phase waits for them."""
    encode, step = generator.encode, generator.decode_step

    def timed_encode(*args, **kwargs):
        start = time.perf_counter()
        out = encode(*args, **kwargs)
        seconds["encode the history"] += time.perf_counter() - start
        return out

    def timed_step(state, prev_codes=None):
        level, start = state.length + 1, time.perf_counter()
        out = step(state, prev_codes)
        seconds[f"level {level}: decoder step and logits"] += time.perf_counter() - start
        return out

    generator.encode, generator.decode_step = timed_encode, timed_step
    try:
        yield
    finally:
        del generator.encode, generator.decode_step


def top10_and_hits(scores, positive_u, positive_i):
    top = scores.topk(10, dim=1).indices
    hit = torch.zeros_like(top, dtype=torch.bool)
    for rank in range(10):  # one target per user in leave-one-out splits
        hit[positive_u, rank] = top[positive_u, rank] == positive_i
    return top, hit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokenizer_checkpoint", help="a saved stage 1 (random generator weights)")
    source.add_argument("--checkpoint", help="a trained model checkpoint")
    p.add_argument("--model", default="TIGER")
    p.add_argument("--dataset", default="Beauty")
    p.add_argument("--config_files", default=CONFIGS)
    p.add_argument("--eval_batch", type=int, default=256, help="users per batch")
    p.add_argument("--batches", type=int, default=8, help="timed test batches (0: all)")
    p.add_argument("--amp", action="store_true", help="also time bfloat16 autocast")
    p.add_argument("--compare_split", action="store_true",
                   help="also time length buckets of equal row counts")
    p.add_argument("--compare_fill", action="store_true",
                   help="also time each variant with new tensors NaN-filled (deterministic mode's default)")
    p.add_argument("--profile", type=int, default=0, help="profile N batches per variant")
    p.add_argument("--phases", type=int, default=0, help="time N batches per variant by phase")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for --tokenizer_checkpoint's model (repeatable)")
    args = p.parse_args(argv)
    if args.set and args.checkpoint:
        p.error("--set applies to --tokenizer_checkpoint's seeded model; a checkpoint keeps "
                "the config it was trained with")
    from _real import set_overrides
    overrides = set_overrides(p, args.set)
    args.eval_batch = overrides.pop("eval_batch_size", args.eval_batch)  # one batch size, printed too
    seed_and_threads(args)
    model, test = load(args, overrides)
    n_users_split = len(test.dataset)
    batches = []
    for batch in test:
        batches.append(batch)
        if args.batches and len(batches) == args.batches + 1:  # the first: an untimed warm-up
            break
    timed = batches[1:] if args.batches else batches  # the whole split: warm-up counted again
    variants = {"float32": contextlib.nullcontext}
    if args.amp:
        variants["bfloat16"] = lambda: torch.autocast(model.device.type, dtype=torch.bfloat16)
    if args.compare_split:
        for name, amp in list(variants.items()):
            variants[f"{name}, equal split"] = functools.partial(equal_split, amp)
    if args.compare_fill:
        for name, amp in list(variants.items()):
            variants[f"{name}, NaN-filled"] = functools.partial(nan_filled, amp)
    with torch.no_grad():
        for amp in variants.values():
            with amp():
                model.full_sort_predict(batches[0][0])
        elapsed = dict.fromkeys(variants, 0.0)
        tops, hits = {name: [] for name in variants}, {name: [] for name in variants}
        for i, (interaction, _, positive_u, positive_i) in enumerate(timed):
            for name in (list(variants) if i % 2 == 0 else list(variants)[::-1]):
                start = time.perf_counter()
                with variants[name]():
                    scores = model.full_sort_predict(interaction)
                elapsed[name] += time.perf_counter() - start
                top, hit = top10_and_hits(scores, positive_u, positive_i)
                tops[name].append(top)
                hits[name].append(hit)
    n_users = sum(len(b[0]) for b in timed)
    print(f"{type(model).__name__}, {n_users} test users in {len(timed)} batches of "
          f"{args.eval_batch} (split: {n_users_split}), beam {model.beam_size}, "
          f"{torch.get_num_threads()} threads")
    for name, seconds in elapsed.items():
        rate = n_users / seconds
        hit = torch.cat(hits[name])
        recall = hit.any(1).float().mean().item()
        ndcg = (hit.float() / torch.log2(torch.arange(2, 12).float())).sum(1).mean().item()
        print(f"  {name}: {rate:.1f} users/s, whole split {n_users_split / rate:.0f} s; "
              f"recall@10 {recall:.4f}, ndcg@10 {ndcg:.4f}")
    if args.amp:
        pairs = list(zip(tops["float32"], tops["bfloat16"]))
        same = torch.cat([(a == b).all(1) for a, b in pairs]).float().mean().item()
        shared = torch.cat([(a.unsqueeze(2) == b.unsqueeze(1)).any(2).sum(1) for a, b in pairs])
        same_set = (shared == 10).float().mean().item()
        print(f"  bfloat16 / float32: {elapsed['float32'] / elapsed['bfloat16']:.2f}x; top-10 "
              f"identical in order for {same:.1%} of users, as a set for {same_set:.1%}; "
              f"{shared.float().mean().item():.2f} of 10 items shared on average")
    if args.phases:
        for name, amp in variants.items():
            seconds = collections.Counter()
            with torch.no_grad(), amp(), phase_timer(model.generator, seconds):
                start = time.perf_counter()
                for interaction, *_ in timed[: args.phases]:
                    model.full_sort_predict(interaction)
                total = time.perf_counter() - start
            seconds["the rest: log-softmax, beams, score matrix"] = total - sum(seconds.values())
            print(f"--- phases, {name}: {total:.2f} s for {min(args.phases, len(timed))} batches")
            for phase, value in seconds.items():
                print(f"  {phase:45s} {value:7.2f} s  {value / total:6.1%}")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        for name, amp in variants.items():
            with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof, amp():
                for interaction, *_ in timed[: args.profile]:
                    model.full_sort_predict(interaction)
            print(f"--- profile, {name}")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


if __name__ == "__main__":
    main()
