"""Are generator steps slower after RecBole's SASRec trained in the same process, and is the
C allocator the cause? (outcome: it was not the allocator but autograd's
anomaly mode, which RecBole's model import switches on and ``compat.anomaly_mode_kept`` now
undoes -- docs/RESULTS.md, "The in-process slowdown")

    python benchmarks/probe_inprocess_slowdown.py --keep_freed_memory off
    python benchmarks/probe_inprocess_slowdown.py --keep_freed_memory on

Times full-size generator training steps (synthetic semantic IDs, ``--batch`` histories of
``--real_items`` items) in a fresh process, then trains SASRec on RecBole's ml-100k for
``--sasrec_epochs`` epochs through the plugin's own entry point, then times the same steps
again. Prints wall ms per step and page faults per step (``ru_minflt``) for both. With
``--keep_freed_memory on`` the process first applies
:func:`recbole_bbq.allocator.keep_freed_memory` (glibc's mallopt), as a CPU run does by default.
Run from the repository root (ml-100k is read from dataset/).
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from _synthetic import add_generator_args, build_generator, random_id_table, seed_and_threads


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def process_state() -> dict:
    """Process-wide torch settings a model run could change behind the next one's back."""
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "anomaly_detection": torch.is_anomaly_enabled(),
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": str(torch.get_default_dtype()),
        "mkldnn_enabled": torch.backends.mkldnn.enabled,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "autocast_cpu": torch.is_autocast_enabled("cpu"),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generator_args(p)
    p.add_argument("--real_items", type=int, default=7)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--sasrec_epochs", type=int, default=3)
    p.add_argument("--keep_freed_memory", choices=["on", "off"], required=True)
    p.add_argument("--between", choices=["sasrec", "nothing"], default="sasrec",
                   help="nothing: time the second window right after the first (the control)")
    args = p.parse_args(argv)
    from recbole_bbq.quick_start import run_recbole_bbq
    from recbole_bbq.allocator import keep_freed_memory

    applied = keep_freed_memory() if args.keep_freed_memory == "on" else False
    seed_and_threads(args, keep_freed_memory=False)  # applied above, or not, per --keep_freed_memory
    levels = [256, 256, 256, 4]
    codes = random_id_table(levels, args.items, unique_last_level=True)
    gen = build_generator(args, levels).train()
    opt = torch.optim.AdamW(gen.parameters(), lr=1e-3)
    mask = torch.zeros(args.batch, args.history, dtype=torch.bool)
    mask[:, -args.real_items:] = True

    def timed(tag):
        def step():
            items = torch.randint(1, args.items + 1, (args.batch, args.history))
            target = codes[torch.randint(1, args.items + 1, (args.batch,))]
            opt.zero_grad()
            gen.loss(codes[items], mask, target).backward()
            opt.step()
        for _ in range(2):
            step()
        f0, t0 = _faults(), time.perf_counter()
        for _ in range(args.steps):
            step()
        out = {"ms_per_step": 1000 * (time.perf_counter() - t0) / args.steps,
               "faults_per_step": (_faults() - f0) / args.steps}
        print(tag, json.dumps({k: round(v, 1) for k, v in out.items()}), flush=True)
        return out

    before = timed("fresh process")
    state_before = process_state()
    t0 = time.perf_counter()
    if args.between == "sasrec":
        run_recbole_bbq("SASRec", "ml-100k", config_dict={
            "epochs": args.sasrec_epochs, "show_progress": False, "state": "WARNING",
            "use_gpu": False}, saved=False)
    between_s = time.perf_counter() - t0
    state_after = process_state()
    changed = {k: (v, state_after[k]) for k, v in state_before.items() if state_after[k] != v}
    after = timed(f"after {args.between} ({between_s:.0f} s) in this process")
    print(json.dumps({"keep_freed_memory": args.keep_freed_memory, "applied": applied,
                      "between": args.between, "process_state_changed": changed,
                      "threads": torch.get_num_threads(), "before": before, "after": after,
                      "after_over_before": round(after["ms_per_step"] / before["ms_per_step"], 3)}))


if __name__ == "__main__":
    main()
