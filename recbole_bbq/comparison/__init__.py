"""Side-by-side comparisons (the paper's tables): the multi-model driver, its presets, run cache
and reports, and Table 6's inference timing (``speed.py``). Stage-1-only runs are
:func:`recbole_bbq.quick_start.train_tokenizer_only`; the speed benchmarks (training steps,
attention kernels, cost growth, cornac side by side) live in the top-level `benchmarks/`."""
