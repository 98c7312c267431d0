"""Similarity-enhanced self-attention of BBQRec's generator (paper sec. 4.2, eq. 14-17).

For history items ``i, j`` with frozen stage-1 item vectors ``v`` (eq. 10):

* eq. 14: ``d_ij = cos(v_i, v_j)`` (the paper's denominator ``||v_i|| ||q_j||`` is a typo
  for ``||v_i|| ||v_j||``, see docs/DESIGN.md section 3);
* eq. 15: ``sim_ij = round((d_ij + 1) / 2 * K)``, an integer bucket in ``[0, K]``;
* eq. 17: every token of item ``i`` attending to every token of item ``j`` uses
  ``e_ij = E_sim[sim_ij]``: ``out_(i,k) = sum_(j,l) alpha^(kl)_ij * (e_ij (.) W_V x_(j,l))``,
  the attention weights ``alpha`` (eq. 16) are the standard ones and the bucket embedding
  multiplies the value elementwise (one ``d_head`` slice per head).

``E_sim`` (``K + 1`` rows of ``n_heads * d_head``) starts at ones, so a fresh model is
exactly plain attention ("non-invasive"); it is trained with the generator.

Cost. The encoder's token axis is item-major (``S = T * L`` tokens for ``T`` history slots
of ``L`` levels; token ``s`` belongs to slot ``s // L``). Because ``e`` depends only on the
(query item, key item) pair, the output is computed per *query item* ``a``: its values are
modulated once, ``V'_a = e_(a, item(j)) (.) v_j`` (``[B, H, T, S, d_head]``), and the
``L`` query tokens of item ``a`` then take an ordinary weighted sum ``w_a @ V'_a`` (one
batched matmul). Extra memory is ``O(B * H * T * S * d_head) = O(B * H * T^2 * L *
d_head)`` for ``V'`` plus ``O(B * T^2 * H * d_head)`` for the gathered ``e`` -- ``L`` times
less than the naive per-token-pair tensor ``[B, H, S, S, d_head]``, and a factor
``T * d_head / L`` more than plain attention's ``[B, H, S, S]`` weights. With TIGER's size
(H=6, d_head=64), T=20, L=3 and 256 rows that is ~0.47 GB of float32 per encoder layer
(kept for backward in a plain autograd graph); the length-bucketed batches of
``GenerativeRecommender`` trim ``T`` to each chunk's longest history, which shrinks it
several-fold on Amazon data. :class:`_SimilarityMix` does not keep ``V'`` for backward: it
saves the weights, ``e`` and ``v`` and recomputes ``V'`` in the backward pass, which frees
the largest tensor of the step between the passes (at TIGER's size on Beauty-length
histories, float32: 1.26-1.36x plain attention's step against 1.38-2.12x when the product
was left to autograd, measured on 5 Dec). Both passes also work through the query items in chunks (about a
million elements of ``V'`` each, at least one item: at TIGER's size one item, up to ~30 MB), so
``V'`` and its gradient never exist whole: 1.23-1.29x against 1.45-1.48x for the whole
tensor at once in float32 (measured later the same day), 0-4 % slower under bfloat16 (1.35-1.41x against 1.35-1.36x;
docs/RESULTS.md, "Speed").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recbole_bbq.modules.generator import MultiHeadAttention

__all__ = ["similarity_buckets", "SimilarityAttention"]


class _SimilarityMix(torch.autograd.Function):
    """Eq. 17's product ``out_a = w_a @ V'_a`` with ``V'_a[(t,l)] = e_(a,t) (.) v_(t,l)``.

    Shapes: ``w5 [B, H, T, L, S]`` (the L query tokens of each query item), ``e [B, H, T, T,
    dh]`` (query item, key item), ``v_items [B, H, T, L, dh]``; output ``[B, H, T, L, dh]``.
    The modulated values ``V'`` (``[B, H, T, S, dh]``, T times the values) are not saved
    for backward but recomputed there, a chunk of query items at a time; everything runs
    in ``v_items``' type (the values' bfloat16 under autocast) except the values' gradient,
    summed over the query items in float32 at least. Not twice differentiable.
    """

    # elements of V' (or of its gradient) per chunk of query items, at least one item: the
    # pieces are written and read back as a working set far smaller than one
    # [B, H, T, S, dh] tensor (measured faster, not profiled for why)
    chunk_elements = 1 << 20

    @staticmethod
    def _modulated(e, v_items):
        b, h, t, n_levels, d = v_items.shape
        return (e.unsqueeze(4) * v_items.unsqueeze(2)).reshape(b, h, e.shape[2], t * n_levels, d)

    @staticmethod
    def _chunks(v_items):
        b, h, t, n_levels, d = v_items.shape
        size = max(1, _SimilarityMix.chunk_elements // max(1, b * h * t * n_levels * d))
        return [(a, min(t, a + size)) for a in range(0, t, size)]

    @staticmethod
    def forward(ctx, w5, e, v_items):
        work = v_items.dtype
        w5c, ec, vc = w5.to(work).contiguous(), e.to(work).contiguous(), v_items.contiguous()
        ctx.save_for_backward(w5c, ec, vc)
        ctx.input_dtypes = (w5.dtype, e.dtype, v_items.dtype)
        return torch.cat([torch.matmul(w5c[:, :, a0:a1], _SimilarityMix._modulated(ec[:, :, a0:a1], vc))
                          for a0, a1 in _SimilarityMix._chunks(vc)], 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        w5, e, v_items = ctx.saved_tensors
        w_type, e_type, v_type = ctx.input_dtypes
        b, h, t, n_levels, d = v_items.shape
        grad_out = grad_out.to(v_items.dtype).contiguous()
        need_w, need_e, need_v = ctx.needs_input_grad
        grad_w, grad_e, grad_v = [], [], None
        for a0, a1 in _SimilarityMix._chunks(v_items):
            g = grad_out[:, :, a0:a1]
            if need_w:
                modulated = _SimilarityMix._modulated(e[:, :, a0:a1], v_items)
                grad_w.append(torch.matmul(g, modulated.transpose(-1, -2)))
                del modulated
            if need_e or need_v:
                # d out / d V'_a, per query item a: [B, H, a1 - a0, T_k, L, dh]
                grad_mod = torch.matmul(w5[:, :, a0:a1].transpose(-1, -2), g).view(
                    b, h, a1 - a0, t, n_levels, d)
                if need_e:
                    # sum over the L key levels without a product tensor of grad_mod's size
                    # (in the values' type: under autocast L <= 5 bfloat16 roundings)
                    part = grad_mod[:, :, :, :, 0] * v_items[:, :, None, :, 0]
                    for level in range(1, n_levels):
                        part.addcmul_(grad_mod[:, :, :, :, level], v_items[:, :, None, :, level])
                    grad_e.append(part)
                if need_v:
                    if grad_v is None:
                        # summed over every query item: in float32 at least, so bfloat16
                        # values do not round once per item
                        grad_v = torch.zeros_like(
                            v_items, dtype=torch.promote_types(v_items.dtype, torch.float32))
                    for i in range(a1 - a0):
                        grad_v.addcmul_(grad_mod[:, :, i], e[:, :, a0 + i].unsqueeze(3))
        grad_w = torch.cat(grad_w, 2).to(w_type) if need_w else None
        grad_e = torch.cat(grad_e, 2).to(e_type) if need_e else None
        grad_v = grad_v.to(v_type) if need_v else None
        return grad_w, grad_e, grad_v


def similarity_buckets(v_hist: torch.Tensor, mask: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """Bucketed cosine similarity between history items (eq. 14-15).

    Args:
        v_hist: ``[B, T, dim]`` frozen item vectors of the history slots.
        mask: bool ``[B, T]``, True = real item.
        n_buckets: ``K``; buckets are ``round((cos + 1) / 2 * K)`` in ``[0, K]``.
    Returns:
        LongTensor ``[B, T, T]``; pairs involving a padded slot get bucket 0 (never used:
        padding neither attends nor is attended). A zero vector has cosine 0 with anything.
    """
    # in float32 even under autocast (enable_amp): bfloat16 cosines moved about one pair in
    # eight into a neighbouring bucket, so training would learn E_sim rows against other
    # buckets than evaluation (float32) looks up
    with torch.autocast(v_hist.device.type, enabled=False):
        v = F.normalize(v_hist.float(), dim=-1)
        cos = torch.matmul(v, v.transpose(1, 2)).clamp(-1.0, 1.0)
    buckets = torch.round((cos + 1.0) / 2.0 * n_buckets).long().clamp(0, n_buckets)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    return buckets.masked_fill(~pair_mask.to(torch.bool), 0)


class SimilarityAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention` whose values are modulated by item-pair similarity embeddings
    (eq. 16-17: the weights are plain attention's, each value scaled by its pair's ``E_sim`` row).

    Use as the generator's encoder ``attention_cls`` (e.g. ``functools.partial(
    SimilarityAttention, n_buckets=K)``) and pass ``item_sim_buckets`` (from
    :func:`similarity_buckets`) to the generator; without it the module is plain attention.
    """

    def __init__(
        self, d_model: int, n_heads: int, d_head: int, dropout: float = 0.0, n_buckets: int = 100
    ):
        super().__init__(d_model, n_heads, d_head, dropout)
        if n_buckets < 1:
            raise ValueError(f"n_buckets (K) must be >= 1, got {n_buckets}")
        self.n_buckets = int(n_buckets)
        self.sim_embedding = nn.Embedding(self.n_buckets + 1, n_heads * d_head)  # E_sim
        self.reset_similarity()

    def reset_similarity(self) -> None:
        """E_sim = 1: the module starts as plain attention (the paper's non-invasive init)."""
        nn.init.ones_(self.sim_embedding.weight)

    def init_own_parameters(self) -> None:
        """Called by ``SemanticIDGenerator.reset_parameters`` after its generic init."""
        self.reset_similarity()

    def combine(
        self,
        weights: torch.Tensor,
        v: torch.Tensor,
        item_sim_buckets: torch.Tensor = None,
        **attn_kwargs,
    ) -> torch.Tensor:
        """``out_(a,k) = sum_(t,l) w_(a,k),(t,l) * (E_sim[sim_at] (.) v_(t,l))`` per head.

        Args:
            weights: ``[B, H, S, S]`` attention probabilities, ``S = T * L`` item-major.
            v: ``[B, H, S, d_head]`` projected values.
            item_sim_buckets: LongTensor ``[B, T, T]`` bucket of every (query item, key item)
                pair, or None for plain attention.
        """
        if item_sim_buckets is None:
            return torch.matmul(weights, v)
        b, h, sq, sk = weights.shape
        t = item_sim_buckets.shape[-1]
        if sq != sk or sk % t != 0 or item_sim_buckets.shape != (b, t, t):
            raise ValueError(
                f"item_sim_buckets {tuple(item_sim_buckets.shape)} does not fit self-attention "
                f"over {sk} tokens of batch {b} (need [B, T, T] with S = T * L)"
            )
        n_levels = sk // t
        d = v.shape[-1]
        # e_(a,t) per head: [B, T, T, H*dh] -> [B, H, T_q, T_k, dh]
        # index_select, not the embedding call: its backward is one index_add_, where the
        # embedding's CPU backward loops over the B * T * T indices one by one
        e = self.sim_embedding.weight.index_select(0, item_sim_buckets.reshape(-1))
        e = e.view(b, t, t, h, d).permute(0, 3, 1, 2, 4)
        # under autocast v is bfloat16 while E_sim stays float32: without the cast the
        # [B, H, T, S, dh] product below would be promoted to float32, twice the memory
        e = e.to(v.dtype)
        # the L query tokens of item a mix V'_a[(t,l)] = e_(a,t) (.) v_(t,l) with their
        # ordinary weights
        out = _SimilarityMix.apply(weights.reshape(b, h, t, n_levels, sk), e,
                                   v.view(b, h, t, n_levels, d))  # [B, H, T, L, dh]
        return out.reshape(b, h, sq, d)
