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

import torch

from recbole_bbq.data.features import load_item_features
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.modules.rqvae import RQVAE


class TIGER(GenerativeRecommender):
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        features = load_item_features(
            config, dataset, list(config["modalities"]), config["standardize_features"]
        )
        self.modalities = list(features)
        self.feature_encoders = {m: f.encoder for m, f in features.items()}
        content = torch.cat([f.values for f in features.values()], dim=1)
        # content features are inputs, not parameters: a buffer moves with the model and is
        # excluded from the optimiser
        self.register_buffer("content", content, persistent=False)
        self.rqvae = self.build_rqvae(content.shape[1], config)
        self.tokenizer_batch_size = int(config["tokenizer_batch_size"])
        self.kmeans_init_enabled = bool(config["kmeans_init"])
        self.seed = int(config["seed"])

    @staticmethod
    def build_rqvae(input_dim: int, config) -> RQVAE:
        """The stage-1 tokenizer (LETTER builds its regularised RQ-VAE here)."""
        return RQVAE(
            input_dim=input_dim,
            hidden_dims=list(config["rqvae_hidden_dims"]),
            latent_dim=config["codebook_dim"],
            n_levels=config["n_levels"],
            codebook_size=config["codebook_size"],
            commitment=config["commitment"],
            dropout=config["rqvae_dropout"],
        )

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

    @torch.no_grad()
    def compute_item_codes(self):
        codes = torch.cat(
            [
                self.rqvae.encode(self.content[start : start + 4096])
                for start in range(1, self.n_items, 4096)
            ]
        )
        return codes.cpu().numpy(), [self.rqvae.quantizer.codebook_size] * self.rqvae.quantizer.n_levels

    def tokenizer_state_dict(self) -> dict:
        return {"rqvae": self.rqvae.state_dict()}

    def load_tokenizer_state_dict(self, state: dict) -> None:
        self.rqvae.load_state_dict(state["rqvae"])
