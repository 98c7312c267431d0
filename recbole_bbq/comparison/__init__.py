"""Side-by-side comparisons (the paper's tables): the multi-model driver, its presets, run cache
and reports, and tokenizer-only sweeps. Speed probes live in the top-level `benchmarks/`."""
from recbole_bbq.comparison.tokenizer_only import train_tokenizer_only

__all__ = ["train_tokenizer_only"]
