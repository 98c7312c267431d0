"""CLUB: a contrastive log-ratio upper bound of mutual information (Cheng et al., ICML 2020).

BBQRec (sec. 4.1.1, eq. 3) disentangles the modality-specific representation ``zbar^m`` from
the behavior-aligned one ``z^m`` by minimising

    L_MIM^m = 1/N sum_i [ log q(zbar_i | z_i) - 1/N sum_j log q(zbar_j | z_i) ],

an upper bound of I(z; zbar) once the variational Gaussian ``q(zbar | z) = N(mu(z),
diag(exp(logvar(z))))`` approximates the true conditional. ``q`` is fitted separately by
maximising ``log q(zbar_i | z_i)`` on positive pairs (:meth:`CLUB.learning_loss`).

Gradient routing (both terms can simply be added to one loss and one optimiser step):

* :meth:`CLUB.mi_upper_bound` evaluates ``q`` with *detached* parameters
  (``torch.func.functional_call``), so the bound trains the encoders that produced ``z`` and
  ``zbar`` but never moves ``q`` -- minimising the bound with respect to ``q`` would make it a
  bad estimate instead of a small mutual information.
* :meth:`CLUB.learning_loss` detaches ``z`` and ``zbar``, so fitting ``q`` never moves the
  encoders.

The negative term uses ``mean_j (zbar_j - mu_i)^2 = (mu_i - mean(zbar))^2 + var(zbar)``
(per dimension), so the bound costs O(N * D) instead of the O(N^2 * D) pairwise tensor.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call


class CLUB(nn.Module):
    """Variational ``q(zbar | z)``: Gaussian with mean and log-variance MLPs of ``z``.

    Args:
        z_dim: dimension of the conditioning variable ``z`` (behavior-aligned latent).
        zbar_dim: dimension of ``zbar`` (modality-specific latent).
        hidden_dim: hidden width of the two MLPs.

    As in the reference implementation, the log-variance head ends in ``tanh`` so the
    variance stays within ``[e^-1, e]`` and the bound cannot blow up early in training.
    """

    def __init__(self, z_dim: int, zbar_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.mu = nn.Sequential(
            nn.Linear(z_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, zbar_dim)
        )
        self.logvar = nn.Sequential(
            nn.Linear(z_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, zbar_dim), nn.Tanh()
        )

    def _gaussian(self, z: torch.Tensor, detach_params: bool = False):
        if not detach_params:
            return self.mu(z), self.logvar(z)
        mu = functional_call(
            self.mu, {k: p.detach() for k, p in self.mu.named_parameters()}, (z,)
        )
        logvar = functional_call(
            self.logvar, {k: p.detach() for k, p in self.logvar.named_parameters()}, (z,)
        )
        return mu, logvar

    def log_likelihood(self, z: torch.Tensor, zbar: torch.Tensor) -> torch.Tensor:
        """``log q(zbar_i | z_i)`` per row, ``[N]`` (full Gaussian density)."""
        mu, logvar = self._gaussian(z)
        return -0.5 * (
            (zbar - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)
        ).sum(-1)

    def learning_loss(self, z: torch.Tensor, zbar: torch.Tensor) -> torch.Tensor:
        """``-mean_i log q(zbar_i | z_i)`` on detached inputs: fits ``q`` only."""
        return -self.log_likelihood(z.detach(), zbar.detach()).mean()

    def mi_upper_bound(self, z: torch.Tensor, zbar: torch.Tensor) -> torch.Tensor:
        """CLUB estimate (BBQRec eq. 3 for one modality), differentiable in ``z`` and ``zbar``.

        ``mean_i log q(zbar_i|z_i) - mean_i mean_j log q(zbar_j|z_i)``; ``q``'s parameters
        are detached, so this term never trains ``q``. The Gaussian normalisers of the two
        terms are identical and cancel.
        """
        mu, logvar = self._gaussian(z, detach_params=True)
        inv_var = (-logvar).exp()
        positive = -0.5 * ((zbar - mu).pow(2) * inv_var).sum(-1)  # [N]
        zbar_mean = zbar.mean(0, keepdim=True)
        zbar_var = zbar.var(0, unbiased=False, keepdim=True)
        # mean_j (zbar_j - mu_i)^2 = (mu_i - mean_j zbar_j)^2 + var_j(zbar_j), per dimension
        negative = -0.5 * (((mu - zbar_mean).pow(2) + zbar_var) * inv_var).sum(-1)  # [N]
        return (positive - negative).mean()
