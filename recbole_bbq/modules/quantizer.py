"""Residual quantization with k-means initialised codebooks (TIGER's RQ-VAE; BBQRec sec. 4.1.2).

For an input z: r^0 = z; at level l, c^l = argmin_c ||r^l - c||^2 over codebook C^l;
r^{l+1} = r^l - c^l; the quantized vector is q = sum_l c^l, passed to the decoder with a
straight-through gradient (q_st = z + sg[q - z]) so the reconstruction loss trains the encoder.
The codebook/commitment loss per level is ||sg[r^l] - c^l||^2 + alpha * ||r^l - sg[c^l]||^2
(BBQRec's L_RQ, eq. 8; TIGER's RQ-VAE loss with beta = alpha = 0.25).

BBQRec quantizes several signals (ID, text, image) with ONE such quantizer ("shared
codebook"); its ``noU`` ablation gives each signal its own. Both use this module.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def kmeans(x: torch.Tensor, n_clusters: int, n_iters: int = 25, generator=None) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns ``[n_clusters, dim]`` centroids.

    With fewer points than clusters, the remaining centroids are copies of points plus small
    noise, so every code is still a usable vector.
    """
    x = x.detach().float()
    n = x.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one point")
    if n <= n_clusters:
        idx = torch.arange(n_clusters, device=x.device) % n
        noise = 1e-3 * torch.randn(n_clusters, x.shape[1], generator=generator, device=x.device)
        return x[idx] + noise * (torch.arange(n_clusters, device=x.device) >= n)[:, None]
    first = torch.randint(n, (1,), generator=generator, device=x.device)
    centroids = [x[first]]
    min_dist = torch.cdist(x, centroids[0]).squeeze(1) ** 2
    for _ in range(1, n_clusters):
        probs = min_dist / min_dist.sum() if min_dist.sum() > 0 else None
        nxt = (
            torch.multinomial(probs, 1, generator=generator)
            if probs is not None
            else torch.randint(n, (1,), generator=generator, device=x.device)
        )
        centroids.append(x[nxt])
        min_dist = torch.minimum(min_dist, (torch.cdist(x, x[nxt]).squeeze(1)) ** 2)
    c = torch.cat(centroids, 0)
    for _ in range(n_iters):
        assign = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=n_clusters).float()
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
    return c


LOSS_REDUCTIONS = ("mean", "sum")


def squared_error(a: torch.Tensor, b: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean over rows of ``||a - b||^2``: summed over dimensions (``'sum'``, the squared L2
    norm of BBQRec's eq. 9) or averaged over them (``'mean'``, ``F.mse_loss``, as TIGER's
    RQ-VAE implementations do)."""
    if reduction == "mean":
        return F.mse_loss(a, b)
    return (a - b).pow(2).sum(-1).mean()


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [B, D] straight-through sum of the chosen codes
    codes: torch.Tensor  # [B, L] code index per level
    loss: torch.Tensor  # scalar: sum over levels of codebook + alpha * commitment
    residual_errors: torch.Tensor  # [L] mean ||z - sum_{k<=l} c^k||^2 after each level


class ResidualQuantizer(nn.Module):
    """``n_levels`` codebooks of ``codebook_size`` codes of dim ``dim``; see module docstring."""

    def __init__(self, n_levels: int, codebook_size: int, dim: int, commitment: float = 0.25,
                 reduction: str = "mean", dead_code_reset: int = 0):
        super().__init__()
        if n_levels < 1 or codebook_size < 1 or dim < 1:
            raise ValueError("n_levels, codebook_size and dim must be positive")
        if reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"reduction must be one of {LOSS_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        # every `dead_code_reset` training calls, codes no input chose since the last reset
        # move onto randomly drawn residuals of the current batch (0: never)
        self.dead_code_reset = int(dead_code_reset)
        self.register_buffer("usage", torch.zeros(n_levels, codebook_size), persistent=False)
        self.training_calls = 0
        self.codes_reset = 0
        self.n_levels = n_levels
        self.codebook_size = codebook_size
        self.dim = dim
        self.commitment = commitment
        self.codebooks = nn.Parameter(torch.empty(n_levels, codebook_size, dim))
        nn.init.uniform_(self.codebooks, -1.0 / codebook_size, 1.0 / codebook_size)
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def kmeans_init(self, z: torch.Tensor, n_iters: int = 25, seed: int = 0,
                    groups=None) -> None:
        """Initialise each level's codebook by k-means on that level's residuals of ``z``.

        ``groups`` (sizes summing to ``len(z)``: ``z`` is that many consecutive blocks, e.g.
        one per signal of a shared codebook): each block gets an equal share of every level's
        codes, k-means on its own residuals, instead of one k-means over all rows, where a
        block of widely spread rows takes codes in proportion to its spread. Residuals are
        taken against the nearest code of the whole level either way, as :meth:`encode` does.
        """
        gen = torch.Generator(device="cpu").manual_seed(seed)
        residual = z.detach().float().cpu()
        if len(residual) == 0:
            raise ValueError("k-means needs at least one point")
        blocks = [len(residual)] if groups is None else [int(g) for g in groups]
        if sum(blocks) != len(residual) or min(blocks) < 1:
            raise ValueError(f"groups {blocks} must be positive sizes summing to the "
                             f"{len(residual)} rows of z")
        if len(blocks) > self.codebook_size:
            raise ValueError(f"{len(blocks)} groups cannot share {self.codebook_size} codes")
        shares = [self.codebook_size // len(blocks) + (i < self.codebook_size % len(blocks))
                  for i in range(len(blocks))]
        for level in range(self.n_levels):
            centroids = torch.cat([
                kmeans(part, share, n_iters=n_iters, generator=gen)
                for part, share in zip(residual.split(blocks), shares)
            ])
            self.codebooks.data[level] = centroids.to(self.codebooks.device)
            residual = residual - centroids[torch.cdist(residual, centroids).argmin(1)]
        self.initialised.fill_(True)

    @torch.no_grad()
    def _track_and_reset(self, codes: torch.Tensor, residuals) -> None:
        """Dead-code re-initialisation (as in Jukebox / SoundStream's VQ): a code that no
        input has chosen for ``dead_code_reset`` training calls is moved onto a residual of
        the current batch, so the codebook keeps all its codes in use instead of collapsing
        onto a few. Each level draws from its own residuals."""
        for level in range(self.n_levels):
            self.usage[level] += torch.bincount(codes[:, level], minlength=self.codebook_size)
        self.training_calls += 1
        if self.training_calls % self.dead_code_reset:
            return
        for level in range(self.n_levels):
            dead = (self.usage[level] == 0).nonzero().squeeze(1)
            if len(dead) == 0:
                continue
            pool = residuals[level]
            pick = torch.randint(len(pool), (len(dead),), device=pool.device)
            self.codebooks.data[level, dead] = pool[pick].to(self.codebooks.dtype)
            self.codes_reset += len(dead)
        self.usage.zero_()

    def _nearest(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        book = self.codebooks[level]
        # ||r - c||^2 = ||r||^2 - 2 r.c + ||c||^2; ||r||^2 is constant per row
        dist = (book * book).sum(1)[None, :] - 2 * residual @ book.t()
        return dist.argmin(1)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, L]`` of ``z`` (no gradients)."""
        residual = z
        codes = []
        for level in range(self.n_levels):
            idx = self._nearest(residual, level)
            codes.append(idx)
            residual = residual - self.codebooks[level][idx]
        return torch.stack(codes, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the code vectors of ``codes`` ``[B, L]`` (no straight-through)."""
        return sum(self.codebooks[level][codes[:, level]] for level in range(self.n_levels))

    def forward(self, z: torch.Tensor, assign=None) -> QuantizerOutput:
        """Quantize ``z [B, D]``. ``assign(level, residual)`` may return codes ``[B]`` that
        replace the nearest ones at that level (``None``: nearest), e.g. LETTER's Sinkhorn."""
        residual = z
        quantized = torch.zeros_like(z)
        codes, errors, residuals = [], [], []
        loss = z.new_zeros(())
        for level in range(self.n_levels):
            idx = assign(level, residual.detach()) if assign is not None else None
            if idx is None:
                idx = self._nearest(residual.detach(), level)
            residuals.append(residual.detach())
            code = self.codebooks[level][idx]
            loss = loss + squared_error(code, residual.detach(), self.reduction)
            loss = loss + self.commitment * squared_error(residual, code.detach(), self.reduction)
            quantized = quantized + code
            residual = residual - code
            codes.append(idx)
            errors.append((z.detach() - quantized.detach()).pow(2).sum(1).mean())
        if self.training and self.dead_code_reset > 0:
            self._track_and_reset(torch.stack(codes, 1), residuals)
        straight_through = z + (quantized - z).detach()
        return QuantizerOutput(straight_through, torch.stack(codes, 1), loss, torch.stack(errors))
