"""RQ-VAE item tokenizer of TIGER (Rajput et al., 2023, sec. 3.1).

An MLP encoder maps an item's content embedding x to a latent z, a
:class:`~recbole_bbq.modules.quantizer.ResidualQuantizer` turns z into L codes and a
quantized vector q, and an MLP decoder reconstructs x from q.
Loss = ||x - xhat||^2 + sum_l (||sg[r^l] - c^l||^2 + beta * ||r^l - sg[c^l]||^2), the
sum over levels as in TIGER's paper; ``level_reduction='mean'`` averages the levels instead,
as LETTER's release does (``RQ-VAE/models/rq.py``), which weighs them 1/L against the
reconstruction and any regulariser.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recbole_bbq.modules.dropout import Dropout
from recbole_bbq.modules.quantizer import ResidualQuantizer


def mlp(dims: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers through ``dims`` with ReLU between them (none after the last)."""
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (512, 256, 128),
        latent_dim: int = 32,
        n_levels: int = 3,
        codebook_size: int = 256,
        commitment: float = 0.25,
        dropout: float = 0.0,
        dead_code_reset: int = 0,
        level_reduction: str = "sum",
    ):
        super().__init__()
        if level_reduction not in ("sum", "mean"):
            raise ValueError(f"rq_level_reduction must be 'sum' or 'mean', not {level_reduction!r}")
        self.level_reduction = level_reduction
        self.encoder = mlp([input_dim, *hidden_dims, latent_dim], dropout)
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), input_dim], dropout)
        self.quantizer = ResidualQuantizer(n_levels, codebook_size, latent_dim, commitment,
                                           dead_code_reset=dead_code_reset)

    @torch.no_grad()
    def kmeans_init(self, x: torch.Tensor, seed: int = 0) -> None:
        """Initialise the codebooks by k-means on the encoder's latents of ``x``."""
        was_training = self.training
        self.eval()
        self.quantizer.kmeans_init(self.encoder(x), seed=seed)
        self.train(was_training)

    def rq_loss(self, out) -> torch.Tensor:
        """The quantizer's codebook + commitment loss, summed or averaged over levels."""
        return out.loss / self.quantizer.n_levels if self.level_reduction == "mean" else out.loss

    def forward(self, x: torch.Tensor) -> dict:
        z = self.encoder(x)
        out = self.quantizer(z)
        recon = F.mse_loss(self.decoder(out.quantized), x)
        rq = self.rq_loss(out)
        return {
            "loss": recon + rq,
            "recon": recon,
            "rq": rq,
            "codes": out.codes,
            "residual_errors": out.residual_errors,
        }

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x))
