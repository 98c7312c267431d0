"""What goes into a checkpoint besides weights: plain records and random-number state.

Every file the package writes loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only (:func:`recbole_bbq.compat.load_checkpoint`). So configs are
stored as plain mappings (:func:`recbole_bbq.fileio.to_plain`) and the numpy / Python
random states are converted to tensors and lists here.
"""
from __future__ import annotations

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


def seed_model_rngs(config) -> None:
    """Seed every generator (Python, numpy, torch) for building and training a model in
    this process: ``seed`` plus the data-parallel rank, so ranks draw different dropout
    masks (rank 0's weights are broadcast to the others anyway)."""
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])


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
