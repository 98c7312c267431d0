"""LETTER's learnable item tokenizer (Wang et al., CIKM 2024, sec. 3; "LETTER-TIGER").

TIGER's RQ-VAE (:class:`~recbole_bbq.modules.rqvae.RQVAE`) plus three regularisers:

* **Collaborative regularisation** (LETTER eq. 4): InfoNCE between each item's quantized
  latent ``q_i`` and its collaborative embedding ``h_i`` from a SASRec trained on the
  interactions, dot-product logits, in-batch negatives --
  ``L_CF = -1/B sum_i log( exp(<q_i, h_i>) / sum_j exp(<q_i, h_j>) )``.
* **Diversity regularisation** (eq. 5-6): every epoch the code vectors of each level are
  clustered (``n_clusters``); the chosen code ``e_i`` of an item is pulled towards a random
  *other* code of its own cluster and pushed from all other codes --
  ``L_Div = -1/B sum_i log( exp(<e_i, e_+>) / sum_{j != c_i} exp(<e_i, e_j>) )``. Spreading
  the items of a region over all of its codes counters code-assignment bias.
* **Sinkhorn-balanced assignment** (:func:`sinkhorn_codes`) at the levels with a positive
  ``epsilon`` (the release: the last level only): during training over each batch, and when
  reading out the IDs, for the items of every colliding group, which are re-assigned to
  distinct last-level codes.

``L = L_recon + L_RQ + cf_weight * L_CF + diversity_weight * sum_l L_Div^l``. Defaults are
the release's LETTER-TIGER recipe (``HonghuiBao2000/LETTER``: 4 levels x 256, latent 32,
alpha = 0.1 as in its ``main.py`` (its ``train_tokenizer.sh`` passes 0.01, measured inert on
standardised features), beta = 1e-4, Sinkhorn epsilon 0.003 at the last level, 50
iterations, 10 clusters, the RQ losses averaged over levels as the release does where TIGER
sums them: ``rq_level_reduction: mean``, LETTER.yaml's value). The code clusters come from
plain k-means instead of the size-constrained k-means (no extra dependency; singleton
clusters simply give no diversity term for their items).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from recbole_bbq.modules.quantizer import kmeans
from recbole_bbq.modules.rqvae import RQVAE
from recbole_bbq.modules.semantic_ids import collision_stats


@torch.no_grad()
def sinkhorn_plan(cost: torch.Tensor, epsilon: float, n_iters: int) -> torch.Tensor:
    """Entropic optimal transport of ``B`` items onto ``K`` codes with equal code mass.

    ``cost [B, K]``; returns the plan ``Q [B, K]`` whose rows sum to 1 and whose columns
    sum to ``B / K`` (approximately, after ``n_iters`` Sinkhorn-Knopp rounds). Computed in
    the log domain: with LETTER's epsilon = 0.003, ``exp(-cost / epsilon)`` over- or
    underflows in float32.
    """
    b, k = cost.shape
    log_q = -cost.double() / epsilon
    for _ in range(n_iters):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(b)
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)
    return (log_q + math.log(b)).exp()


@torch.no_grad()
def sinkhorn_codes(sq_distances: torch.Tensor, epsilon: float, n_iters: int) -> torch.Tensor:
    """Balanced code per item: ``argmax`` of the Sinkhorn plan on centred distances.

    As in the release, the squared distances are first mapped affinely to ``[-1, 1]`` so
    ``epsilon`` means the same thing whatever the latents' scale.
    """
    lo, hi = sq_distances.min(), sq_distances.max()
    middle = (hi + lo) / 2
    amplitude = (hi - middle).clamp(min=1e-5)
    return sinkhorn_plan((sq_distances - middle) / amplitude, epsilon, n_iters).argmax(1)


def collaborative_loss(quantized: torch.Tensor, cf_embeddings: torch.Tensor) -> torch.Tensor:
    """LETTER's L_CF (eq. 4): in-batch InfoNCE aligning ``quantized[i]`` with ``cf[i]``."""
    logits = quantized @ cf_embeddings.t()
    return F.cross_entropy(logits, torch.arange(len(quantized), device=quantized.device))


def diversity_loss(codebook: torch.Tensor, codes: torch.Tensor, clusters: torch.Tensor,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """LETTER's L_Div (eq. 5-6) for one level.

    ``codebook [K, D]``, ``codes [B]`` each item's chosen code, ``clusters [K]`` the cluster
    of every code. The positive of item ``i`` is a uniformly drawn other code of its code's
    cluster; the item's own code is excluded from the softmax. Items whose code is alone in
    its cluster have no positive and are left out.
    """
    k = codebook.shape[0]
    same = clusters[codes][:, None] == clusters[None, :]  # [B, K]
    own = F.one_hot(codes, k).bool()
    candidates = same & ~own
    has_positive = candidates.any(1)
    if not bool(has_positive.any()):
        return codebook.new_zeros(())
    weights = candidates[has_positive].float()
    positive = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    chosen = codebook[codes[has_positive]]
    logits = (chosen @ codebook.t()).masked_fill(own[has_positive], float("-inf"))
    return F.cross_entropy(logits, positive)


class LetterTokenizer(RQVAE):
    """TIGER's RQ-VAE with LETTER's regularisers; see the module docstring.

    Args beyond :class:`RQVAE`:
        sinkhorn_epsilons: one per level; ``> 0`` turns on Sinkhorn assignment at that level.
        sinkhorn_iters: Sinkhorn-Knopp rounds.
        cf_weight, diversity_weight: LETTER's alpha and beta.
        n_clusters: clusters of code vectors per level for the diversity loss.
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int] = (512, 256, 128),
                 latent_dim: int = 32, n_levels: int = 4, codebook_size: int = 256,
                 commitment: float = 0.25, dropout: float = 0.0,
                 sinkhorn_epsilons: Sequence[float] = (0.0, 0.0, 0.0, 0.003),
                 sinkhorn_iters: int = 50, cf_weight: float = 0.1,
                 diversity_weight: float = 1e-4, n_clusters: int = 10,
                 dead_code_reset: int = 0, level_reduction: str = "mean"):
        super().__init__(input_dim, hidden_dims, latent_dim, n_levels, codebook_size,
                         commitment, dropout, dead_code_reset, level_reduction)
        epsilons = [float(e) for e in sinkhorn_epsilons]
        if len(epsilons) != n_levels:
            raise ValueError(
                f"sinkhorn_epsilons has {len(epsilons)} values but there are {n_levels} "
                f"levels; give one epsilon per level (0 = nearest code)"
            )
        self.sinkhorn_epsilons = epsilons
        self.sinkhorn_iters = int(sinkhorn_iters)
        self.cf_weight = float(cf_weight)
        self.diversity_weight = float(diversity_weight)
        self.n_clusters = int(n_clusters)
        # cluster of every code per level, refreshed by :meth:`refresh_code_clusters`
        self.register_buffer("code_clusters", torch.zeros(n_levels, codebook_size, dtype=torch.long))

    def _sinkhorn_assign(self, level: int, residual: torch.Tensor):
        epsilon = self.sinkhorn_epsilons[level]
        if epsilon <= 0 or len(residual) < 2:
            return None
        book = self.quantizer.codebooks[level]
        return sinkhorn_codes(torch.cdist(residual, book).pow(2), epsilon, self.sinkhorn_iters)

    @torch.no_grad()
    def refresh_code_clusters(self, seed: int = 0) -> None:
        """Cluster each level's code vectors (once per epoch, as the release does)."""
        gen = torch.Generator().manual_seed(seed)
        for level in range(self.quantizer.n_levels):
            book = self.quantizer.codebooks[level].detach().float().cpu()
            n_clusters = min(self.n_clusters, len(book))
            centroids = kmeans(book, n_clusters, generator=gen)
            self.code_clusters[level] = torch.cdist(book, centroids).argmin(1).to(
                self.code_clusters.device
            )

    def forward(self, x: torch.Tensor, cf_embeddings: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> dict:
        z = self.encoder(x)
        out = self.quantizer(z, assign=self._sinkhorn_assign if self.training else None)
        recon = F.mse_loss(self.decoder(out.quantized), x)
        div = sum(
            diversity_loss(self.quantizer.codebooks[level], out.codes[:, level],
                           self.code_clusters[level], generator)
            for level in range(self.quantizer.n_levels)
        )
        cf = (collaborative_loss(out.quantized, cf_embeddings)
              if cf_embeddings is not None else recon.new_zeros(()))
        rq = self.rq_loss(out)
        loss = recon + rq + self.cf_weight * cf + self.diversity_weight * div
        return {"loss": loss, "recon": recon, "rq": rq, "cf": cf, "diversity": div,
                "codes": out.codes}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sinkhorn: bool = False) -> torch.Tensor:
        z = self.encoder(x)
        if not sinkhorn:
            return self.quantizer.encode(z)
        return self.quantizer(z, assign=self._sinkhorn_assign).codes

    @torch.no_grad()
    def resolve_collisions_with_sinkhorn(self, x: torch.Tensor, codes: np.ndarray,
                                         max_rounds: int = 20):
        """The release's read-out: re-assign every colliding group's items with Sinkhorn.

        ``x [n, d]`` features of the items whose nearest-code IDs are ``codes [n, L]``.
        Each round re-encodes the items of every group sharing an ID, with Sinkhorn at the
        levels that have a positive epsilon, balancing the group over those levels' codes;
        stops when no item collides or after ``max_rounds``. Returns the new codes and the
        collision statistics before and after.
        """
        codes = np.array(codes, dtype=np.int64, copy=True)
        before = collision_stats(codes)
        if any(e > 0 for e in self.sinkhorn_epsilons):
            for _ in range(max_rounds):
                _, inverse, counts = np.unique(codes, axis=0, return_inverse=True,
                                               return_counts=True)
                inverse = inverse.reshape(-1)
                groups = [np.flatnonzero(inverse == g) for g in np.flatnonzero(counts > 1)]
                if not groups:
                    break
                for rows in groups:
                    index = torch.as_tensor(rows, device=x.device)
                    codes[rows] = self.encode(x[index], sinkhorn=True).cpu().numpy()
        return codes, before, collision_stats(codes)
