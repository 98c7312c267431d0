"""Shared fixtures: a tiny synthetic multimodal dataset in the prepared on-disk format."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import recbole_bbq  # noqa: F401  (applies the compatibility fixes before RecBole loads)
from recbole_bbq import compat
from recbole_bbq.data.feature_store import (
    feature_path,
    metadata_path,
    write_feature_file,
    write_metadata,
)


def pytest_configure(config):
    # pytest installs its own warning filters around every test, dropping the package's: restate
    # the known-harmless RecBole ones so that a new warning stands out in the summary
    for message, category, module in compat.HARMLESS_RECBOLE_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:{category}:{module}")


# Every test tensor is tiny: one intra-op thread is as fast and never stalls when other
# processes hold the cores (two threads per process on 2 busy cores made tests 10x slower).
torch.set_num_threads(1)

N_ITEMS, N_CLUSTERS, N_USERS = 40, 5, 80

# LETTER's keys at a size the synthetic data trains in seconds (over tiny_config)
TINY_LETTER = {
    "n_levels": 3, "codebook_size": 8, "codebook_dim": 8, "letter_cf_dim": 8,
    "sinkhorn_epsilons": [0.0, 0.0, 0.003], "letter_cf_epochs": 1, "letter_cf_inner_size": 16,
    "diversity_clusters": 3, "modalities": ["text", "image"],
}
MODALITY_DIMS = {"text": 16, "image": 24, "category": 8}


def make_synthetic_dataset(root, name="synth", seed=0, modalities=MODALITY_DIMS):
    """Users walk mostly inside one item cluster; every modality carries the cluster signal.

    Writes ``<root>/<name>/<name>.inter`` and one feature file per modality, item tokens
    ``i0..i39`` and user tokens ``u0..u79``, and returns the dataset folder.
    """
    rng = np.random.default_rng(seed)
    cluster_of = np.arange(N_ITEMS) % N_CLUSTERS
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(N_USERS):
        home = rng.integers(N_CLUSTERS)
        length = int(rng.integers(6, 12))
        clusters = np.where(rng.random(length) < 0.8, home, rng.integers(N_CLUSTERS, size=length))
        for step, cluster in enumerate(clusters):
            item = rng.choice(np.flatnonzero(cluster_of == cluster))
            lines.append(f"u{user}\ti{item}\t{1000 * user + step}")
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    tokens = [f"i{i}" for i in range(N_ITEMS)]
    meta = {}
    for modality, dim in modalities.items():
        centroids = rng.normal(size=(N_CLUSTERS, dim))
        values = centroids[cluster_of] + 0.3 * rng.normal(size=(N_ITEMS, dim))
        write_feature_file(feature_path(folder, name, modality), tokens, values)
        meta[modality] = {"encoder": f"synthetic-{dim}d", "dim": dim}
    write_metadata(metadata_path(folder, name), {"dataset": name, "modalities": meta})
    return folder


@pytest.fixture
def synthetic_data_path(tmp_path):
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path / "data"


def tiny_config(tmp_path, data_path, **overrides):
    """A configuration small enough to train both stages in seconds on a CPU."""
    config = {
        "data_path": str(data_path),
        "checkpoint_dir": str(tmp_path / "saved"),
        "results_dir": str(tmp_path / "results"),
        # RECBOLE_BBQ_TEST_GPU=1 runs every end-to-end test on the GPU, to check CUDA paths
        "use_gpu": os.environ.get("RECBOLE_BBQ_TEST_GPU") == "1",
        "show_progress": False,
        "state": "WARNING",
        "epochs": 2,
        "train_batch_size": 64,
        "eval_batch_size": 64,
        # TIGER-sized keys shrunk
        "rqvae_hidden_dims": [32],
        "codebook_dim": 8,
        "n_levels": 2,
        "codebook_size": 8,
        "tokenizer_epochs": 3,
        "tokenizer_batch_size": 16,
        "tokenizer_eval_step": 1,
        "d_model": 32,
        "n_heads": 2,
        "d_head": 16,
        "d_ff": 64,
        "n_encoder_layers": 1,
        "n_decoder_layers": 1,
        "beam_size": 10,
        # SASRec keys shrunk
        "hidden_size": 32,
        "inner_size": 64,
        "n_layers": 1,
    }
    config.update(overrides)
    return config
