"""What the generator benchmarks share: their size arguments, a random semantic-ID table and
the generator built from them (TIGER's full size by default)."""
from __future__ import annotations

import argparse
from typing import Sequence

import torch

from recbole_bbq.modules.generator import SemanticIDGenerator


def add_generator_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--items", type=int, default=12101)
    p.add_argument("--history", type=int, default=20)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--beam", type=int, default=20)
    p.add_argument("--eval_batch", type=int, default=256)
    p.add_argument("--d_model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--d_head", type=int, default=64)
    p.add_argument("--d_ff", type=int, default=1024)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")


def seed_and_threads(args, keep_freed_memory: bool = True) -> None:
    """What every synthetic benchmark does first: its thread count, glibc's malloc told to keep
    freed memory (as every run does by default, the ``keep_freed_memory`` key; without it each
    step's large buffers are faulted in again and elementwise work looks several times
    dearer than in a run), then seed 0."""
    if keep_freed_memory:
        from recbole_bbq.allocator import keep_freed_memory as keep
        keep()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)


def random_id_table(levels: Sequence[int], items: int, unique_last_level: bool = False) -> torch.Tensor:
    """``(items + 1, L)`` codes, row 0 the padding item (-1); with ``unique_last_level`` the
    last level numbers items like a disambiguation level."""
    codes = torch.stack([torch.randint(s, (items,)) for s in levels], 1)
    if unique_last_level:
        codes[:, -1] = torch.arange(items) % levels[-1]
    return torch.cat([torch.full((1, len(levels)), -1), codes])


def build_generator(args, levels: Sequence[int], dropout: float = 0.1) -> SemanticIDGenerator:
    return SemanticIDGenerator(
        list(levels), args.history, d_model=args.d_model, n_heads=args.heads, d_head=args.d_head,
        d_ff=args.d_ff, n_enc_layers=args.layers, n_dec_layers=args.layers, dropout=dropout,
    )
