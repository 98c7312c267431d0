"""Side-by-side comparisons (the paper's tables): the multi-model driver, its presets, run cache
and reports. Stage-1-only runs are :func:`recbole_bbq.quick_start.train_tokenizer_only`;
speed probes live in the top-level `benchmarks/`."""
