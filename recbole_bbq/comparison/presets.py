"""What the side-by-side driver can run: the metrics, the paper's presets and a run spec."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

METRICS = ["recall@5", "recall@10", "ndcg@5", "ndcg@10"]
METRIC_LABELS = {"recall@5": "Recall@5", "recall@10": "Recall@10", "ndcg@5": "NDCG@5",
                 "ndcg@10": "NDCG@10"}
SWEEPS = {  # paper sec. 5.4, around L=3, N=256, D=128, K=100
    "n_levels": [1, 2, 3, 4],
    "codebook_size": [64, 128, 256, 512],
    "codebook_dim": [32, 64, 128, 256],
    "sim_buckets": [10, 50, 100, 200],
}
PRESETS = {
    "table2": {"kind": "compare", "title": "Overall performance (paper Table 2)",
               "models": ["GRU4Rec", "SASRec", "BERT4Rec", "TIGER", "LETTER", "BBQRec"]},
    "table3": {"kind": "compare", "title": "Tokenizer ablations (paper Table 3)",
               "models": ["BBQRec_noMIM", "BBQRec_noRec", "BBQRec_noU", "BBQRec"]},
    "table4": {"kind": "compare", "title": "Generator ablations (paper Table 4)",
               "models": ["BBQRec_S", "BBQRec_E", "BBQRec"]},
    "figure4": {"kind": "compare", "title": "Signal ablations (paper Figure 4)",
                "models": ["BBQRec_noID", "BBQRec_noText", "BBQRec_noImage", "BBQRec"]},
    "figure3": {"kind": "sweep", "title": "Hyper-parameters (paper Figure 3)",
                "models": ["BBQRec"], "sweeps": SWEEPS},
    "table5": {"kind": "collisions", "title": "Colliding items by ID length (paper Table 5)",
               "models": ["TIGER", "LETTER", "BBQRec"], "levels": [2, 3, 4]},
    "table6": {"kind": "speed", "title": "Inference speed (paper Table 6)",
               "models": ["TIGER", "BBQRec"], "beams": [50, 100]},
}


@dataclass
class RunSpec:
    """One configuration to train: a display label, a model and its own overrides."""

    label: str
    model: str
    overrides: Dict = field(default_factory=dict)
