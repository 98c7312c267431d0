"""What goes into a checkpoint besides weights: plain records and random-number state.

Every file the package writes loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only (:func:`recbole_bbq.compat.load_checkpoint`). So configs are
stored as plain mappings (:func:`recbole_bbq.fileio.to_plain`) and the numpy / Python
random states are converted to tensors and lists here.
"""
from __future__ import annotations

import os
import random
from typing import Optional

import numpy as np
import torch
from recbole.utils import init_seed

from recbole_bbq.fileio import to_plain


def weights_only_safe(value):
    """``value`` with tensors kept and everything else made plain (:func:`to_plain`), so
    ``torch.load(weights_only=True)`` reads it back: numpy scalars and strings inside a
    state dict or a record become Python ones."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        return {str(k): weights_only_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [weights_only_safe(v) for v in value]
    return to_plain(value)


def seed_everything(seed: int, reproducibility: bool) -> None:
    """RecBole's ``init_seed``, plus torch's deterministic algorithms when ``reproducibility``
    is on (RecBole's default).

    ``init_seed`` only pins cuDNN. On a CPU with 2 threads that is not enough: the backward
    of a codebook lookup (``codebooks[level][idx]``, an accumulating ``index_put_``) summed
    in a different order from run to run, so a seeded TIGER stage 1 on Beauty gave 4,596 and
    5,116 colliding items after 5 epochs in two identical runs (docs/RESULTS.md,
    "Reproducible seeds"). ``warn_only``: an op without a deterministic kernel warns instead
    of stopping the run. cuBLAS needs its workspace setting before it starts.

    Deterministic mode would also fill every new tensor with NaN before its kernel writes
    it (``torch.utils.deterministic.fill_uninitialized_memory``), a guard for code that reads
    memory it never wrote. No kernel here does, and the fill is pure cost (about 1 % of a
    full-size beam search under bfloat16 and of a half-size training step, docs/RESULTS.md,
    "Speed"), so it is off, and seeded runs still repeat bit for bit (a test checks). The
    switch exists from torch 2.2; older releases have no fill to switch off.
    """
    init_seed(seed, reproducibility)
    if reproducibility:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(reproducibility), warn_only=True)
    if hasattr(torch.utils, "deterministic"):
        torch.utils.deterministic.fill_uninitialized_memory = False


def seed_model_rngs(config) -> None:
    """Seed every generator (Python, numpy, torch) for building and training a model in
    this process: ``seed`` plus the data-parallel rank, so ranks draw different dropout
    masks (rank 0's weights are broadcast to the others anyway)."""
    seed_everything(config["seed"] + config["local_rank"], config["reproducibility"])


def capture_rng_state(data_generator: Optional[torch.Generator] = None) -> dict:
    """Python, numpy, torch (CPU and every CUDA device) and the training data loader's
    shuffling generator, as weights-only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def restore_rng_state(state: dict, data_generator: Optional[torch.Generator] = None) -> None:
    """Undo :func:`capture_rng_state`; a missing part (an older checkpoint) is left alone."""
    if not state:
        return
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["cached"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if data_generator is not None and state.get("data") is not None:
        data_generator.set_state(state["data"].cpu())
