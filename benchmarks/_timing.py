"""Timing two variants of one training step fairly on a shared, noisy machine."""
import time

import torch


def _sync():
    # CUDA kernels run asynchronously: without this a GPU step would time its launches only
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def alternating_samples_per_s(steps: dict, batches) -> dict:
    """Samples/s of each ``steps[name](batch)`` over the same batches, alternating the order
    batch by batch so machine noise hits every variant alike (one process, one run)."""
    names = list(steps)
    elapsed = dict.fromkeys(names, 0.0)
    for i, batch in enumerate(batches):
        for name in (names if i % 2 == 0 else names[::-1]):
            _sync()
            start = time.perf_counter()
            steps[name](batch)
            _sync()
            elapsed[name] += time.perf_counter() - start
    n = sum(len(b) for b in batches)
    return {name: n / seconds for name, seconds in elapsed.items()}
