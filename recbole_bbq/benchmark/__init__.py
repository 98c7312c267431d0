"""Side-by-side benchmarking: tokenizer-only sweeps and the multi-model driver."""
from recbole_bbq.benchmark.tokenizer_only import train_tokenizer_only

__all__ = ["train_tokenizer_only"]
