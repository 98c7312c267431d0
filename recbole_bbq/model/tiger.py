"""TIGER (Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023).

Stage 1: an RQ-VAE over one content embedding per item (the configured ``modalities``,
concatenated when there are several), codebooks initialised by k-means on the encoder's
latents of all items, an extra level appended when items still share an ID.
Stage 2: the shared encoder-decoder generator and constrained beam search, without any
similarity module.

The RQ-VAE sees item content only (no interactions), so training it on every item of the
catalogue leaks no validation or test signal.
"""
from __future__ import annotations

import numpy as np
import torch

from recbole_bbq.data.features import load_item_features
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.modules.rqvae import RQVAE

_CHUNK = 4096  # items per forward pass when reading out codes


class TIGER(GenerativeRecommender):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        if config["semantic_ids_file"]:
            # the IDs come from a table and no stage 1 runs: no content is read (a dataset
            # without feature files can take a table) and no RQ-VAE is built or saved
            self.modalities, self.feature_encoders = [], {}
            self.register_buffer("content", torch.zeros(0, 0), persistent=False)
            self.rqvae = None
        else:
            features = load_item_features(
                config, dataset, list(config["modalities"]), config["standardize_features"]
            )
            self.modalities = list(features)
            self.feature_encoders = {m: f.encoder for m, f in features.items()}
            content = torch.cat([f.values for f in features.values()], dim=1)
            # content features are inputs, not parameters: a buffer moves with the model and
            # is excluded from the optimiser
            self.register_buffer("content", content, persistent=False)
            self.rqvae = self.build_rqvae(content.shape[1], config)
        self.tokenizer_batch_size = int(config["tokenizer_batch_size"])
        self.kmeans_init_enabled = bool(config["kmeans_init"])
        self.seed = int(config["seed"])

    @staticmethod
    def rqvae_kwargs(config) -> dict:
        """TIGER's RQ-VAE settings from the config (LETTER adds its regularisers to them)."""
        return dict(
            hidden_dims=list(config["rqvae_hidden_dims"]),
            latent_dim=int(config["codebook_dim"]),
            n_levels=int(config["n_levels"]),
            codebook_size=int(config["codebook_size"]),
            commitment=float(config["commitment"]),
            dropout=float(config["rqvae_dropout"] or 0.0),
            dead_code_reset=int(config["dead_code_reset"] or 0),
            level_reduction=str(config["rq_level_reduction"] or "sum"),
        )

    @classmethod
    def build_rqvae(cls, input_dim: int, config) -> RQVAE:
        """The stage-1 tokenizer (LETTER builds its regularised RQ-VAE here)."""
        return RQVAE(input_dim, **cls.rqvae_kwargs(config))

    # ---------------------------------------------------------------- stage 1
    def tokenizer_parameters(self):
        return self.rqvae.parameters()

    def tokenizer_init(self, train_data) -> None:
        if self.kmeans_init_enabled and not bool(self.rqvae.quantizer.initialised):
            self.rqvae.kmeans_init(self.content[1:], seed=self.seed)

    def tokenizer_batches(self, train_data):
        order = torch.randperm(self.n_items - 1, device=self.content.device) + 1
        for start in range(0, len(order), self.tokenizer_batch_size):
            yield order[start : start + self.tokenizer_batch_size]

    def calculate_tokenizer_loss(self, batch) -> dict:
        out = self.rqvae(self.content[batch])
        return {"loss": out["loss"], "recon": out["recon"], "rq": out["rq"]}

    @property
    def code_level_sizes(self) -> list:
        """Codes per level of the RQ-VAE (before any disambiguation level)."""
        return [self.rqvae.quantizer.codebook_size] * self.rqvae.quantizer.n_levels

    @torch.no_grad()
    def nearest_codes(self) -> np.ndarray:
        """Nearest-code IDs ``[n_items - 1, L]`` of items 1..n-1."""
        codes = [self.rqvae.encode(self.content[start : start + _CHUNK])
                 for start in range(1, self.n_items, _CHUNK)]
        return torch.cat(codes).cpu().numpy()

    @torch.no_grad()
    def compute_item_codes(self):
        return self.nearest_codes(), self.code_level_sizes

    def tokenizer_state_dict(self) -> dict:
        return {"rqvae": self.rqvae.state_dict()}

    def load_tokenizer_state_dict(self, state: dict) -> None:
        self.rqvae.load_state_dict(state["rqvae"])
