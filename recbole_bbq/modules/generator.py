"""Encoder-decoder generator of semantic IDs (stage 2 of TIGER and BBQRec).

An item is represented by its *semantic ID*: a tuple ``(c_1, ..., c_L)`` of discrete codes,
one per level, with ``c_l in {0, ..., level_sizes[l] - 1}``. Given a user's history of items
(each flattened into its L level tokens), the model generates the next item's ID
autoregressively (TIGER, Rajput et al. 2023; BBQRec eq. 1)::

    p(c_1, ..., c_L | history) = prod_{l=1..L} p(c_l | c_<l, history)

The network is a T5-style pre-norm encoder-decoder:

* encoder input: the history's tokens flattened item-major, ``[item1 level1..L, item2
  level1..L, ...]``, embedded as ``token_emb[level](code) + level_emb[level] +
  position_emb[item position]`` (``history_tokens="item"``: one position per item, the sum
  over its levels of ``token_emb + level_emb``, plus its position); pre-norm self-attention +
  FFN blocks; final norm.
* decoder input: ``[BOS, c_1, ..., c_{L-1}]`` (teacher forcing), embedded as ``token_emb`` +
  ``level_emb`` of the token's level, plus a decoder-position embedding (``decoder_start=
  "last_item"`` adds the newest history item's encoder states to BOS); pre-norm causal
  self-attention, cross-attention to the encoder output, FFN; final norm.
* output: decoder position ``l`` (after BOS and ``l`` tokens) is projected by the level-``l``
  head onto ``level_sizes[l]`` classes, or, with ``tie_embeddings``, scored against the
  level's token embedding table ``token_emb[l]``.

Padding: history items with ``history_mask == False`` never attend and are never attended
to (their keys get exactly zero attention weight, their hidden states are zeroed after every
layer), so the output does not depend on the codes stored at padded positions. A row with no
real item gives zero memory and zero cross-attention (no NaN).

Extending the encoder attention (BBQRec's similarity-enhanced self-attention)
-----------------------------------------------------------------------------
:class:`MultiHeadAttention` computes ``weights = softmax(q k^T / sqrt(d_head) + mask)`` and
then calls the overridable ``self.combine(weights, v, **attn_kwargs)`` (default
``weights @ v``). Any keyword arguments given to :meth:`SemanticIDGenerator.encode`,
``forward``, ``loss`` or ``target_log_prob`` are passed unchanged to ``combine`` of every
encoder self-attention module (never to the decoder). To swap the attention, pass
``attention_cls=MySimilarityAttention`` (a subclass of :class:`MultiHeadAttention` taking the
same constructor arguments) or, for a different layer, ``encoder_layer_cls`` (same
constructor signature as :class:`EncoderLayer`). In ``combine`` the token axis has length
``S = T * n_levels`` laid out item-major: token ``s`` belongs to history slot ``s //
n_levels`` and level ``s % n_levels`` (``S = T`` with ``history_tokens="item"``). A module
with its own initialisation (e.g. an embedding that must start at ones) defines
``init_own_parameters()``, which :meth:`SemanticIDGenerator.reset_parameters` calls after
its generic normal init.

Pure PyTorch; no RecBole import.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_bbq.modules.dropout import Dropout

__all__ = [
    "MultiHeadAttention",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Encoder",
    "Decoder",
    "SemanticIDGenerator",
    "DecoderState",
    "DECODER_STARTS",
    "FIRST_LEVEL_READOUTS",
    "HISTORY_TOKENS",
    "FIRST_LEVEL_EMBEDDINGS",
]

DECODER_STARTS = ("bos", "last_item")
FIRST_LEVEL_READOUTS = ("decoder", "start")
HISTORY_TOKENS = ("levels", "item")
FIRST_LEVEL_EMBEDDINGS = ("tokens", "items")


def _make_norm(kind: str, d_model: int, eps: float = 1e-6) -> nn.Module:
    kind = kind.lower()
    if kind in ("rms", "rmsnorm"):
        return nn.RMSNorm(d_model, eps=eps)
    if kind in ("layer", "layernorm", "ln"):
        return nn.LayerNorm(d_model, eps=eps)
    raise ValueError(f"unknown norm {kind!r}; use 'rms' or 'layer'")


def _make_activation(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    kind = kind.lower()
    if kind == "relu":
        return F.relu
    if kind == "gelu":
        return F.gelu
    raise ValueError(f"unknown activation {kind!r}; use 'relu' or 'gelu'")


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with an overridable value-combination step.

    ``inner = n_heads * d_head`` may differ from ``d_model``; the output projection maps it
    back to ``d_model``.

    Args (forward):
        query: ``[B, Sq, d_model]``.
        key_value: ``[B, Sk, d_model]``.
        key_mask: optional bool ``[B, Sk]``, True = real key. Masked keys get weight exactly 0.
        causal: if True, query ``i`` only sees keys ``j <= i`` (requires ``Sq == Sk``).
        **attn_kwargs: forwarded to :meth:`combine`.

    Queries with no visible key get all-zero weights and hence a zero output (no NaN).
    """

    # plain attention (no combine override) runs F.scaled_dot_product_attention; False forces
    # the explicit softmax (benchmarks/bench_fused_attention.py compares the two)
    use_fused_kernel = True
    # True: the fused kernel under CPU autocast too (benchmarks/bench_cpu_amp.py times both;
    # with dropout on the CPU the explicit path is taken either way, see _fused_applies)
    fused_kernel_in_cpu_autocast = False
    # self-attention projects q, k and v with one product over the three stacked weights (and
    # cross-attention k and v with one); False: three (two) products, as the weights are stored
    # (benchmarks/bench_fused_attention.py --switch fuse_projections times both)
    fuse_projections = True

    def __init__(self, d_model: int, n_heads: int, d_head: int, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_head
        inner = n_heads * d_head
        self.q_proj = nn.Linear(d_model, inner, bias=False)
        self.k_proj = nn.Linear(d_model, inner, bias=False)
        self.v_proj = nn.Linear(d_model, inner, bias=False)
        self.o_proj = nn.Linear(inner, d_model, bias=False)
        self.attn_dropout = Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.n_heads, self.d_head).transpose(1, 2)  # [B, H, S, dh]

    def attention_weights(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        key_mask: Optional[torch.Tensor] = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """``softmax(q k^T / sqrt(d_head) + mask)``; q ``[B,H,Sq,dh]``, k ``[B,H,Sk,dh]``."""
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_head)
        sq, sk = scores.shape[-2], scores.shape[-1]
        allowed = None
        if key_mask is not None:
            allowed = key_mask[:, None, None, :].to(torch.bool)  # [B,1,1,Sk]
        if causal:
            tri = torch.ones(sq, sk, dtype=torch.bool, device=scores.device).tril()
            allowed = tri[None, None] if allowed is None else (allowed & tri[None, None])
        if allowed is None:
            return torch.softmax(scores, dim=-1)
        # finite fill value: a row whose keys are all masked yields uniform weights instead of
        # NaN, and the multiplication below then sets every masked weight to exactly 0.
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        return weights * allowed.to(weights.dtype)

    def _fused(self, q, k, v, key_mask, causal) -> torch.Tensor:
        """``softmax(q k^T / sqrt(d_head) + mask) v`` by ``F.scaled_dot_product_attention``:
        the same result as :meth:`attention_weights` + :meth:`combine` (a test checks it),
        with the same convention that a query with no visible key outputs zeros."""
        sq, sk = q.shape[-2], k.shape[-2]
        allowed = None
        if key_mask is not None:
            allowed = key_mask[:, None, None, :].to(torch.bool)
        if causal:
            tri = torch.ones(sq, sk, dtype=torch.bool, device=q.device).tril()
            allowed = tri[None, None] if allowed is None else (allowed & tri[None, None])
        if allowed is None:
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_dropout.p if self.training else 0.0)
        visible = allowed.any(-1, keepdim=True)  # [B or 1, 1, Sq or 1, 1]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed | ~visible,  # all-masked rows: any finite output ...
            dropout_p=self.attn_dropout.p if self.training else 0.0)
        return out * visible.to(out.dtype)  # ... then zeroed, as attention_weights does

    def _fused_applies(self, q: torch.Tensor) -> bool:
        if not self.use_fused_kernel or type(self).combine is not MultiHeadAttention.combine:
            return False
        # with dropout on the CPU, the fused call falls back to PyTorch's explicit (math)
        # kernel and draws its mask with bernoulli_; the explicit path here is the same math
        # with the cheaper mask of modules/dropout.py (1.12-1.15x per training step)
        if self.training and self.attn_dropout.p > 0 and q.device.type == "cpu" and Dropout.cheap_cpu_mask:
            return False
        # under CPU autocast (bfloat16) the fused kernel ran at about half the explicit path's
        # rate (docs/RESULTS.md, "bfloat16 on the CPU"), so low-precision CPU attention takes
        # the explicit path. Keyed on the type, so a model cast wholesale to bfloat16 takes it
        # too; float16 on the CPU was not measured and is treated alike
        low_precision_cpu = q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)
        return self.fused_kernel_in_cpu_autocast or not low_precision_cpu

    def combine(self, weights: torch.Tensor, v: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        """Mix values with attention weights. Override to modulate the values.

        Args:
            weights: ``[B, H, Sq, Sk]`` attention probabilities (after dropout).
            v: ``[B, H, Sk, d_head]`` projected values.
            **attn_kwargs: whatever the caller passed to the encoder (unused here).
        Returns:
            ``[B, H, Sq, d_head]``; default ``weights @ v``.
        """
        return torch.matmul(weights, v)

    def _stacked(self, x: torch.Tensor, projections) -> list:
        """``[self._split(p(x)) for p in projections]``, by one product when fusing: the
        weights stay separate parameters (checkpoints keep their keys) and are stacked per
        call, a copy of a few hundred kB against a third of the products' calls."""
        if not self.fuse_projections:
            return [self._split(p(x)) for p in projections]
        weight = torch.cat([p.weight for p in projections])
        return [self._split(part) for part in F.linear(x, weight).chunk(len(projections), dim=-1)]

    def project_kv(self, key_value: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``[B, H, Sk, d_head]`` (cacheable for incremental decoding)."""
        k, v = self._stacked(key_value, (self.k_proj, self.v_proj))
        return k, v

    def project_qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values ``[B, H, S, d_head]`` of a self-attention input."""
        q, k, v = self._stacked(x, (self.q_proj, self.k_proj, self.v_proj))
        return q, k, v

    def forward(
        self,
        query: torch.Tensor,
        key_value: torch.Tensor,
        key_mask: Optional[torch.Tensor] = None,
        causal: bool = False,
        **attn_kwargs,
    ) -> torch.Tensor:
        if query is key_value:  # self-attention: q, k and v from one stacked projection
            q, k, v = self.project_qkv(query)
            return self.attend_projected(q, k, v, key_mask=key_mask, causal=causal, **attn_kwargs)
        k, v = self.project_kv(key_value)
        return self.attend(query, k, v, key_mask=key_mask, causal=causal, **attn_kwargs)

    def attend(self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs) -> torch.Tensor:
        """Attention of ``query [B, Sq, d_model]`` over projected ``k, v [B, H, Sk, d_head]``
        (``key_mask``, ``causal`` and the rest as :meth:`attend_projected`)."""
        return self.attend_projected(self._split(self.q_proj(query)), k, v, **kwargs)

    def attend_projected(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_mask: Optional[torch.Tensor] = None,
        causal: bool = False,
        **attn_kwargs,
    ) -> torch.Tensor:
        """Attention of projected ``q [B, H, Sq, d_head]`` over ``k, v``; output ``[B, Sq, d_model]``."""
        if self._fused_applies(q):
            out = self._fused(q, k, v, key_mask, causal)
            b, _, sq, _ = out.shape
            return self.o_proj(out.transpose(1, 2).reshape(b, sq, self.n_heads * self.d_head))
        weights = self.attention_weights(q, k, key_mask=key_mask, causal=causal)
        weights = self.attn_dropout(weights)
        out = self.combine(weights, v, **attn_kwargs)  # [B, H, Sq, dh]
        b, _, sq, _ = out.shape
        out = out.transpose(1, 2).reshape(b, sq, self.n_heads * self.d_head)
        return self.o_proj(out)


class FeedForward(nn.Module):
    """Position-wise ``W_o(dropout(act(W_i x)))`` (T5 style, no biases)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.wi = nn.Linear(d_model, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d_model, bias=False)
        self.act = _make_activation(activation)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(self.dropout(self.act(self.wi(x))))


class EncoderLayer(nn.Module):
    """Pre-norm encoder block: ``x + SelfAttn(norm(x))`` then ``x + FFN(norm(x))``.

    Self-attention goes through :meth:`self_attention`, which forwards ``**attn_kwargs`` to
    the attention module (``self.self_attn``, an instance of ``attention_cls``).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm: str = "rms",
        attention_cls: Type[MultiHeadAttention] = MultiHeadAttention,
    ):
        super().__init__()
        self.self_attn = attention_cls(d_model, n_heads, d_head, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm_attn = _make_norm(norm, d_model)
        self.norm_ffn = _make_norm(norm, d_model)
        self.dropout = Dropout(dropout)

    def self_attention(self, x: torch.Tensor, mask: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        """Self-attention over the (already normalised) tokens ``x`` with key mask ``mask``."""
        return self.self_attn(x, x, key_mask=mask, **attn_kwargs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        x = x + self.dropout(self.self_attention(self.norm_attn(x), mask, **attn_kwargs))
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))
        return x * mask.unsqueeze(-1).to(x.dtype)  # padded query outputs do not matter


class DecoderLayer(nn.Module):
    """Pre-norm decoder block: causal self-attention, cross-attention, FFN.

    ``x`` may hold ``G`` decoder sequences per memory row (``x.shape[0] == G *
    memory.shape[0]``, rows ``b*G .. b*G+G-1`` belong to memory row ``b``), which is how beams
    share one encoder output without copying it: for cross-attention the ``G`` sequences of
    a user are concatenated along the query axis (queries do not interact there).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_ff: int,
        dropout: float = 0.1,
        activation: str = "relu",
        norm: str = "rms",
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads, d_head, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, d_head, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm_self = _make_norm(norm, d_model)
        self.norm_cross = _make_norm(norm, d_model)
        self.norm_ffn = _make_norm(norm, d_model)
        self.dropout = Dropout(dropout)

    def _cross_and_ffn(
        self,
        x: torch.Tensor,
        cross_kv: Tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
    ) -> torch.Tensor:
        bg, s, d = x.shape
        b = cross_kv[0].shape[0]
        h = self.norm_cross(x).reshape(b, (bg // b) * s, d)  # G sequences per memory row
        c = self.cross_attn.attend(h, *cross_kv, key_mask=memory_mask).reshape(bg, s, d)
        x = x + self.dropout(c)
        return x + self.dropout(self.ffn(self.norm_ffn(x)))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        h = self.norm_self(x)
        x = x + self.dropout(self.self_attn(h, h, causal=True))
        return self._cross_and_ffn(x, self.cross_attn.project_kv(memory), memory_mask)

    def step(
        self,
        x: torch.Tensor,
        self_kv: Optional[Tuple[torch.Tensor, torch.Tensor]],
        cross_kv: Tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Incremental decoding of one new position ``x [B', 1, d]``.

        ``self_kv``: cached self-attention keys/values ``[B', H, l, d_head]`` of the earlier
        positions (None at the first step); ``cross_kv``: projected memory ``[B, H, S,
        d_head]``. Returns the new hidden state and the extended self-attention cache.
        """
        h = self.norm_self(x)
        q, k, v = self.self_attn.project_qkv(h)
        if self_kv is not None:
            k = torch.cat([self_kv[0], k], dim=2)
            v = torch.cat([self_kv[1], v], dim=2)
        x = x + self.dropout(self.self_attn.attend_projected(q, k, v))  # sees all earlier
        return self._cross_and_ffn(x, cross_kv, memory_mask), (k, v)


class Encoder(nn.Module):
    """Stack of encoder layers plus final norm; padded positions are zeroed.

    ``final_dropout``: drop the normed output too (T5); without it the memory is used whole
    (SASRec: dropout only on the inputs and inside the residual branches)."""

    def __init__(self, layers: Sequence[nn.Module], final_norm: nn.Module, dropout: float,
                 final_dropout: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm
        self.dropout = Dropout(dropout)
        self.output_dropout = Dropout(dropout if final_dropout else 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, **attn_kwargs) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)
        x = self.dropout(x) * m
        for layer in self.layers:
            x = layer(x, mask, **attn_kwargs)
        return self.output_dropout(self.final_norm(x)) * m


class Decoder(nn.Module):
    """Stack of decoder layers plus final norm. Without ``final_dropout`` neither the readout
    that scores the tokens nor the first position (the start, which holds the encoder's
    output under ``decoder_start="last_item"``) is dropped; the later inputs still are."""

    def __init__(self, layers: Sequence[nn.Module], final_norm: nn.Module, dropout: float,
                 final_dropout: bool = True):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm
        self.dropout = Dropout(dropout)
        self.output_dropout = Dropout(dropout if final_dropout else 0.0)
        self.start_dropout = Dropout(dropout if final_dropout else 0.0)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
        first_from_input: bool = False,
    ) -> torch.Tensor:
        """``first_from_input``: position 0's output skips the layers (its input, normed), while
        the layers still read it as the first key and value of their self-attention."""
        if self.start_dropout.p == self.dropout.p:
            x = self.dropout(x)  # one draw over every position, as before the key existed
        else:
            x = torch.cat([self.start_dropout(x[:, :1]), self.dropout(x[:, 1:])], dim=1)
        first = x[:, :1]
        for layer in self.layers:
            x = layer(x, memory, memory_mask)
        if first_from_input:
            x = torch.cat([first, x[:, 1:]], dim=1)
        return self.output_dropout(self.final_norm(x))


class LevelOutput(nn.Linear):
    """An untied output layer onto one level's tokens. Its weight is a table with one row per
    token, like an embedding table, so ``weight_decay_scope: hidden`` leaves it undecayed
    (``vocabulary_table``), as it leaves the embedding tables."""

    vocabulary_table = True


class SemanticIDGenerator(nn.Module):
    """T5-style encoder-decoder that generates an item's semantic ID level by level.

    Models ``p(c_1..c_L | history) = prod_l p(c_l | c_<l, history)`` (BBQRec eq. 1; TIGER)
    and is trained with token cross-entropy under teacher forcing.

    Args:
        level_sizes: ``level_sizes[l]`` = number of codes at level ``l``; ``n_levels =
            len(level_sizes)``.
        max_history: number of history positions with a learned position embedding; inputs
            may have at most this many history slots ``T``.
        d_model, n_heads, d_head, d_ff, n_enc_layers, n_dec_layers, dropout: transformer
            sizes (defaults = TIGER: 4+4 layers, d_model 128, 6 heads x 64, FFN 1024, 0.1).
            ``n_dec_layers=0`` (with ``decoder_start="last_item"`` only) scores level 0 from
            the start vector alone, SASRec's readout, and level ``l > 0`` from the level
            ``l-1`` token alone: a full model only on one-level IDs.
        activation: ``"relu"`` or ``"gelu"`` (FFN).
        norm: ``"rms"`` (T5) or ``"layer"`` pre-norm.
        position_order: ``"recent"`` (default): position 0 = most recent real item, 1 = the
            one before, ...; ``"oldest"``: position 0 = oldest real item. Positions are
            counted over real items only, so left- and right-padding give identical outputs.
        attention_cls: attention class for the encoder self-attention (hook for BBQRec's
            similarity-enhanced attention).
        encoder_layer_cls: encoder layer class, constructed as ``encoder_layer_cls(d_model,
            n_heads, d_head, d_ff, dropout, activation, norm, attention_cls)``.
        init_std: std of the normal initialisation of embeddings and linear weights
            (``init="normal"``).
        init: ``"normal"``: every embedding and linear weight from ``N(0, init_std)``.
            ``"t5"``: T5's scheme (Raffel et al. 2020; Mesh TensorFlow's initialisers):
            embeddings from ``N(0, 1)``, every linear weight from ``N(0, fan_in ** -0.5)``,
            the query projection from ``N(0, (d_model * d_head) ** -0.5)`` so that attention
            scores start at unit scale. Token identity then dominates the residual stream
            at the start, instead of being diluted by the first attention averages.
        tie_embeddings: score level ``l`` against its own token embedding table instead of
            a separate output layer, ``logits_l = h E_l^T`` (SASRec's item scoring; T5's
            shared input/output embedding, as in LETTER's released T5, which also scales
            ``h`` by ``d_model ** -0.5``: done here under ``init="t5"``, whose embeddings
            start at unit scale). A token is then trained both where it is read and where
            it is predicted, which matters for BBQRec's near-private tuple tokens.
        output_bias: give the untied output layers a bias per token (T5's output layer has
            none; the tied output never has one).
        decoder_start: what the decoder's first position reads. ``"bos"`` (TIGER, T5): a
            learned BOS vector, the same for every user, so the first level is read from the
            history through cross-attention alone. ``"last_item"``: BOS plus the encoder
            states of the most recent history item (the mean of its level tokens' states, or
            its one state with ``history_tokens="item"``), the
            recency that SASRec gets by scoring from its last position (docs/RESULTS.md,
            "The decoder's start").
        first_level_readout: where the first level is scored from. ``"decoder"`` (TIGER,
            T5): the decoder layers' output at position 0. ``"start"`` (with
            ``decoder_start="last_item"`` only): the normed start itself, SASRec's readout of
            the newest history state, as with ``n_dec_layers=0``; the later levels still go
            through the decoder layers, which read the start as their first position
            (docs/RESULTS.md, "The first level from the start").
        final_dropout: drop the encoder's and decoder's normed outputs and the decoder's
            start as well (T5, TIGER). ``False`` keeps dropout on the token inputs and inside
            the residual branches only, as SASRec does, so the encoder's states reach the
            readout that scores the tokens undropped (docs/RESULTS.md, "Dropout after the
            final norm").
        input_norm: normalise each history token's input (token + level + position
            embeddings; with ``history_tokens="item"`` the item's summed levels + position)
            with the model's norm before the encoder, as SASRec's LayerNorm over
            item + position embedding does, so an item's input does not scale with its
            embedding's norm (docs/RESULTS.md, "Where the atomic control's recall goes").
        start_every_level: add the start to every decoder position's input, not only the
            first (``decoder_start="last_item"`` only). Each level's readout then holds the
            newest history state directly, so without decoder layers level ``l > 0`` is
            scored from the start plus the level ``l-1`` token, SASRec's readout at every
            level, instead of from the token alone (docs/RESULTS.md, "The start at every
            level"). The copies at the later positions are dropped with the token they are
            added to, also under ``final_dropout=False``.
        history_tokens: how a history item enters the encoder. ``"levels"`` (TIGER): each of
            its ``L`` level tokens is an encoder position of its own, so the memory holds ``T
            * L`` tokens. ``"item"``: one position per item, the sum of its level tokens'
            embeddings, as SASRec reads one embedding per item (docs/RESULTS.md, "One encoder
            position per history item"). The weights are the same either way.
    """

    def __init__(
        self,
        level_sizes: Sequence[int],
        max_history: int,
        d_model: int = 128,
        n_heads: int = 6,
        d_head: int = 64,
        d_ff: int = 1024,
        n_enc_layers: int = 4,
        n_dec_layers: int = 4,
        dropout: float = 0.1,
        activation: str = "relu",
        norm: str = "rms",
        position_order: str = "recent",
        attention_cls: Type[MultiHeadAttention] = MultiHeadAttention,
        encoder_layer_cls: Type[nn.Module] = EncoderLayer,
        init_std: float = 0.02,
        init: str = "normal",
        tie_embeddings: bool = False,
        output_bias: bool = True,
        decoder_start: str = "bos",
        first_level_readout: str = "decoder",
        final_dropout: bool = True,
        input_norm: bool = False,
        start_every_level: bool = False,
        history_tokens: str = "levels",
        first_level_embeddings: str = "tokens",
        item_codes: Optional[torch.Tensor] = None,
    ):
        super().__init__()
        self.level_sizes: List[int] = [int(s) for s in level_sizes]
        if not self.level_sizes or min(self.level_sizes) < 1:
            raise ValueError(f"level_sizes must be non-empty and positive, got {level_sizes}")
        if position_order not in ("recent", "oldest"):
            raise ValueError("position_order must be 'recent' or 'oldest'")
        self.n_levels = len(self.level_sizes)
        self.max_history = int(max_history)
        self.d_model = d_model
        self.position_order = position_order
        if init not in ("normal", "t5"):
            raise ValueError(f"init must be 'normal' or 't5', got {init!r}")
        if decoder_start not in DECODER_STARTS:
            raise ValueError(f"decoder_start must be one of {DECODER_STARTS}, got {decoder_start!r}")
        if n_dec_layers == 0 and decoder_start == "bos":
            # without cross-attention only the start reads the memory, and BOS does not
            raise ValueError("n_dec_layers=0 needs decoder_start='last_item': from BOS alone "
                             "the model would never read the history")
        if first_level_readout not in FIRST_LEVEL_READOUTS:
            raise ValueError(f"first_level_readout must be one of {FIRST_LEVEL_READOUTS}, "
                             f"got {first_level_readout!r}")
        if first_level_readout == "start" and decoder_start == "bos":
            raise ValueError("first_level_readout='start' needs decoder_start='last_item': BOS "
                             "alone would score the first level the same for every user")
        if start_every_level and decoder_start == "bos":
            raise ValueError("start_every_level needs decoder_start='last_item': BOS added to "
                             "every position would be one more constant, the same for every user")
        if history_tokens not in HISTORY_TOKENS:
            raise ValueError(f"history_tokens must be one of {HISTORY_TOKENS}, got {history_tokens!r}")
        self.history_tokens = history_tokens
        if first_level_embeddings not in FIRST_LEVEL_EMBEDDINGS:
            raise ValueError(f"first_level_embeddings must be one of {FIRST_LEVEL_EMBEDDINGS}, "
                             f"got {first_level_embeddings!r}")
        if first_level_embeddings == "items":
            if not tie_embeddings:
                raise ValueError("first_level_embeddings='items' scores against token embeddings: "
                                 "it needs tie_embeddings=True")
            if item_codes is None or item_codes.dim() != 2 or item_codes.shape[1] != len(self.level_sizes):
                raise ValueError("first_level_embeddings='items' needs item_codes [n_items, n_levels]")
        self.first_level_embeddings = first_level_embeddings
        # the catalogue's IDs, one row per item (no padding row): which items sit under each
        # level-1 token, and how many. Buffers, so they follow the module to its device, not
        # saved: rebuilt from the model's ID table, which the checkpoint holds
        codes = torch.zeros(0, len(self.level_sizes), dtype=torch.long)
        if first_level_embeddings == "items":
            codes = item_codes.detach().to("cpu", torch.long).clone()
            for lvl, size in enumerate(self.level_sizes):
                bad = (codes[:, lvl] < 0) | (codes[:, lvl] >= size)
                if bad.any():
                    row = int(bad.nonzero()[0, 0])
                    raise ValueError(f"item_codes row {row} has level-{lvl + 1} code "
                                     f"{int(codes[row, lvl])}, outside 0..{size - 1}")
        self.register_buffer("first_level_items", codes, persistent=False)
        self.register_buffer("first_level_counts",
                             torch.bincount(codes[:, 0], minlength=self.level_sizes[0])
                             if codes.numel() else torch.zeros(0, dtype=torch.long),
                             persistent=False)
        # set only inside ``first_level_shared()``: the centroids computed once for every
        # chunk of one batch
        self._first_level_shared: Optional[torch.Tensor] = None
        self.decoder_start = decoder_start
        self.first_level_readout = first_level_readout
        self.start_every_level = bool(start_every_level)
        self.init_std = init_std
        self.init = init

        # shared by encoder and decoder
        self.token_emb = nn.ModuleList(nn.Embedding(n, d_model) for n in self.level_sizes)
        self.level_emb = nn.Embedding(self.n_levels, d_model)
        self.position_emb = nn.Embedding(self.max_history, d_model)  # encoder: item position
        self.bos_emb = nn.Parameter(torch.zeros(d_model))
        self.dec_position_emb = nn.Embedding(self.n_levels, d_model)  # decoder step 0..L-1
        self.input_norm = _make_norm(norm, d_model) if input_norm else None

        self.encoder = Encoder(
            [
                encoder_layer_cls(
                    d_model, n_heads, d_head, d_ff, dropout, activation, norm, attention_cls
                )
                for _ in range(n_enc_layers)
            ],
            _make_norm(norm, d_model),
            dropout,
            final_dropout,
        )
        self.decoder = Decoder(
            [
                DecoderLayer(d_model, n_heads, d_head, d_ff, dropout, activation, norm)
                for _ in range(n_dec_layers)
            ],
            _make_norm(norm, d_model),
            dropout,
            final_dropout,
        )
        # tied: no output layers; level_logits scores against token_emb
        self.heads = None if tie_embeddings else nn.ModuleList(
            LevelOutput(d_model, n, bias=output_bias) for n in self.level_sizes)
        self.output_scale = d_model ** -0.5 if init == "t5" else 1.0
        self.reset_parameters()

    # ------------------------------------------------------------------ init / helpers
    @property
    def embedding_std(self) -> float:
        """Std of the freshly initialised embedding tables (BBQRec_E scales inherited ones to it)."""
        return 1.0 if self.init == "t5" else self.init_std

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=self.embedding_std)
            elif isinstance(module, nn.Linear):
                std = self.init_std if self.init == "normal" else module.in_features ** -0.5
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.init == "t5":
            for module in self.modules():
                if isinstance(module, MultiHeadAttention):
                    nn.init.normal_(module.q_proj.weight, mean=0.0,
                                    std=(module.d_model * module.d_head) ** -0.5)
        nn.init.normal_(self.bos_emb, mean=0.0, std=self.embedding_std)
        # modules with their own initialisation (e.g. similarity embeddings that start at 1)
        for module in self.modules():
            if module is not self and callable(getattr(module, "init_own_parameters", None)):
                module.init_own_parameters()

    def level_logits(self, level: int, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores ``[..., level_sizes[level]]`` of the level's tokens for decoder
        states ``h [..., d_model]`` (the output layer, or the tied token embeddings; at level
        1 under ``first_level_embeddings="items"``, :meth:`first_level_item_embeddings`)."""
        if self.heads is not None:
            return self.heads[level](h)
        if self.output_scale != 1.0:
            h = h * self.output_scale
        if level == 0 and self.first_level_embeddings == "items":
            centroids = self._first_level_shared
            if centroids is None:
                centroids = self.first_level_item_embeddings()
            logits = F.linear(h, centroids)
            # a token no item starts with is no place for mass (a tied token learns to score
            # low; a zero centroid cannot)
            return logits.masked_fill(self.first_level_counts == 0, float("-inf"))
        return F.linear(h, self.token_emb[level].weight)

    def first_level_item_embeddings(self) -> torch.Tensor:
        """``[level_sizes[0], d_model]``: each level-1 token as the mean, over the items whose ID
        starts with it, of their summed level-token embeddings -- the embedding an item reads
        as under ``history_tokens="item"``, less the level embeddings, which are the same for
        every item and so cannot move a softmax over tokens. A token only one item has is
        scored against that item's whole embedding, as SASRec and the atomic control score
        items; a shared one against its items' centroid, the later levels then choosing
        among them. Every item under a token shares that token, so the mean is the token's
        own embedding plus the mean of its items' later-level tokens (a token no item starts
        with: its own embedding, its logit masked out by :meth:`level_logits`). Computed from
        the live tables at every call, so both sides train it."""
        codes, own = self.first_level_items, self.token_emb[0].weight
        later = own.new_zeros(len(codes), self.d_model)
        for lvl in range(1, self.n_levels):
            later = later + self.token_emb[lvl](codes[:, lvl])
        sums = torch.zeros_like(own).index_add_(0, codes[:, 0], later)
        return own + sums / self.first_level_counts.clamp(min=1).to(sums.dtype).unsqueeze(1)

    @contextmanager
    def first_level_shared(self) -> Iterator[None]:
        """Within the block, :meth:`level_logits` reuses one :meth:`first_level_item_embeddings`
        instead of computing it at every call: for the length buckets of one batch, whose
        losses are summed into one backward (or scored with the same weights), so the result
        is the same and the centroids' forward and backward run once per batch, not once
        per chunk. Weights must not change inside the block. A no-op unless
        ``first_level_embeddings="items"``."""
        if self.first_level_embeddings != "items" or self._first_level_shared is not None:
            yield  # nothing to share, or an enclosing block already shares it
            return
        self._first_level_shared = self.first_level_item_embeddings()
        try:
            yield
        finally:
            self._first_level_shared = None

    def embed_level_tokens(self, codes: torch.Tensor, first_level: int = 0) -> torch.Tensor:
        """Token + level embeddings for ``codes [..., n]`` holding levels ``first_level..+n-1``."""
        n = codes.shape[-1]
        out = []
        for i in range(n):
            lvl = first_level + i
            out.append(self.token_emb[lvl](codes[..., i]) + self.level_emb.weight[lvl])
        if not out:
            return codes.new_zeros(codes.shape + (self.d_model,), dtype=self.bos_emb.dtype)
        return torch.stack(out, dim=-2)

    @property
    def memory_tokens_per_item(self) -> int:
        """Encoder positions per history item: ``n_levels``, or 1 with ``history_tokens="item"``."""
        return 1 if self.history_tokens == "item" else self.n_levels

    def history_positions(self, history_mask: torch.Tensor) -> torch.Tensor:
        """Position index (0..max_history-1) of every history slot; 0 at padded slots."""
        mask = history_mask.to(torch.long)
        rank = mask.cumsum(dim=1) - 1  # 0 = oldest real item
        if self.position_order == "recent":
            rank = mask.sum(dim=1, keepdim=True) - 1 - rank
        return rank.clamp(min=0) * mask

    # ------------------------------------------------------------------ encoder
    def encode(
        self, history_codes: torch.Tensor, history_mask: torch.Tensor, **attn_kwargs
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encode histories.

        Args:
            history_codes: LongTensor ``[B, T, n_levels]``; values at padded slots are ignored
                (any value, e.g. -1 or 0).
            history_mask: BoolTensor ``[B, T]``, True = real item (any padding side).
            **attn_kwargs: passed to every encoder self-attention ``combine``.
        Returns:
            ``memory [B, T*k, d_model]`` (zero at padded tokens) and ``memory_mask [B, T*k]``
            (True = real token), ``k`` = :attr:`memory_tokens_per_item`.
        """
        if history_codes.dim() != 3 or history_codes.shape[-1] != self.n_levels:
            raise ValueError(
                f"history_codes must be [B, T, {self.n_levels}], got {tuple(history_codes.shape)}"
            )
        b, t, L = history_codes.shape
        if t > self.max_history:
            raise ValueError(f"history has {t} slots but max_history={self.max_history}")
        mask = history_mask.to(torch.bool)
        codes = history_codes.masked_fill(~mask.unsqueeze(-1), 0)
        x = self.embed_level_tokens(codes)  # [B, T, L, d]
        k = self.memory_tokens_per_item
        if k == 1:
            x = x.sum(dim=2, keepdim=True)
        x = x + self.position_emb(self.history_positions(mask)).unsqueeze(2)
        x = x.reshape(b, t * k, self.d_model)
        if self.input_norm is not None:
            x = self.input_norm(x)
        token_mask = mask.unsqueeze(-1).expand(b, t, k).reshape(b, t * k)
        memory = self.encoder(x, token_mask, **attn_kwargs)
        return memory, token_mask

    # ------------------------------------------------------------------ decoder
    def start_input(self, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's first input ``[B, d]`` per memory row (see ``decoder_start``)."""
        b = memory.shape[0]
        start = self.bos_emb.expand(b, self.d_model)
        if self.decoder_start == "bos":
            return start
        L = self.memory_tokens_per_item
        t = memory.shape[1] // L
        item_mask = memory_mask.reshape(b, t, L)[..., 0]
        # slots run oldest -> newest whatever the padding side: the last real slot is the newest
        newest = t - 1 - item_mask.flip(1).to(torch.long).argmax(dim=1)
        states = memory.reshape(b, t, L, self.d_model)[torch.arange(b, device=memory.device), newest]
        recent = states.mean(dim=1) * item_mask.any(dim=1, keepdim=True).to(memory.dtype)
        return start + recent

    def _decoder_input(self, start: torch.Tensor, prefix_codes: torch.Tensor) -> torch.Tensor:
        """Start ``[B, d]`` and ``[B', l]`` prefix (``B' = G * B``) -> decoder input ``[B', l+1,
        d]`` = start, c_1..c_l (+positions)."""
        bp, l = prefix_codes.shape
        if start.shape[0] != bp:
            start = start.repeat_interleave(bp // start.shape[0], dim=0)
        tokens = self.embed_level_tokens(prefix_codes)
        if self.start_every_level:
            tokens = tokens + start.unsqueeze(1)
        x = torch.cat([start.unsqueeze(1), tokens], dim=1)
        return x + self.dec_position_emb.weight[: l + 1]

    def decode_hidden(
        self, memory: torch.Tensor, memory_mask: torch.Tensor, prefix_codes: torch.Tensor
    ) -> torch.Tensor:
        """Decoder states ``[B', l+1, d]`` for input ``BOS, prefix``; see :meth:`decode_logits`."""
        if prefix_codes.shape[0] % memory.shape[0] != 0:
            raise ValueError(
                f"prefix batch {prefix_codes.shape[0]} is not a multiple of memory batch "
                f"{memory.shape[0]}"
            )
        start = self.start_input(memory, memory_mask)
        return self.decoder(self._decoder_input(start, prefix_codes), memory, memory_mask,
                            first_from_input=self.first_level_readout == "start")

    def decode_logits(
        self, memory: torch.Tensor, memory_mask: torch.Tensor, prefix_codes: torch.Tensor
    ) -> torch.Tensor:
        """Logits of the next level given a prefix of ``l`` codes.

        Args:
            memory, memory_mask: output of :meth:`encode`, batch ``B``.
            prefix_codes: LongTensor ``[B', l]`` with ``0 <= l < n_levels`` and ``B' = G * B``:
                rows ``b*G .. b*G+G-1`` are decoded against memory row ``b`` (e.g. ``G`` beams
                per user, in ``repeat_interleave`` order). ``G = 1`` is the plain case.
        Returns:
            ``[B', level_sizes[l]]`` unnormalised logits for level ``l``.
        """
        l = prefix_codes.shape[1]
        if not 0 <= l < self.n_levels:
            raise ValueError(f"prefix length {l} must be in [0, {self.n_levels})")
        h = self.decode_hidden(memory, memory_mask, prefix_codes)
        return self.level_logits(l, h[:, -1])

    # ------------------------------------------------------------------ incremental decoding
    def start_decoding(self, memory: torch.Tensor, memory_mask: torch.Tensor) -> "DecoderState":
        """Begin incremental decoding (used by beam search): projects the memory once per
        decoder layer for cross-attention; see :meth:`decode_step`."""
        cross = [layer.cross_attn.project_kv(memory) for layer in self.decoder.layers]
        return DecoderState(memory_mask, cross, [None] * len(cross),
                            self.start_input(memory, memory_mask))

    def decode_step(
        self, state: "DecoderState", prev_codes: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Feed one decoder position and return the logits of the next level.

        Step ``l`` (``state.length == l``) feeds BOS (``l == 0``, ``prev_codes`` None, one row
        per memory row) or the level-``l-1`` codes ``prev_codes [B']`` (``B' = G * B``, rows
        grouped per memory row as in :meth:`decode_logits`) and returns ``[B',
        level_sizes[l]]`` logits, equal to ``decode_logits`` on the whole prefix. Reorder
        or expand rows between steps with :meth:`DecoderState.reorder`.
        """
        l = state.length
        if not 0 <= l < self.n_levels:
            raise ValueError(f"decoder already produced all {self.n_levels} levels")
        if l == 0:
            x = state.start.unsqueeze(1)
        else:
            if prev_codes is None:
                raise ValueError("prev_codes is required after the first step")
            x = self.token_emb[l - 1](prev_codes) + self.level_emb.weight[l - 1]
            if self.start_every_level:
                x = x + state.start.repeat_interleave(x.shape[0] // state.start.shape[0], dim=0)
            x = x.unsqueeze(1)
        x = (self.decoder.start_dropout if l == 0 else self.decoder.dropout)(
            x + self.dec_position_emb.weight[l])
        first = x
        for i, layer in enumerate(self.decoder.layers):
            x, state.self_kv[i] = layer.step(
                x, state.self_kv[i], state.cross_kv[i], state.memory_mask
            )
        if l == 0 and self.first_level_readout == "start":
            x = first
        h = self.decoder.output_dropout(self.decoder.final_norm(x))
        state.length = l + 1
        return self.level_logits(l, h[:, 0])

    # ------------------------------------------------------------------ training API
    def forward(
        self,
        history_codes: torch.Tensor,
        history_mask: torch.Tensor,
        target_codes: torch.Tensor,
        **attn_kwargs,
    ) -> List[torch.Tensor]:
        """Teacher-forced logits for every level in one decoder pass.

        Args:
            history_codes ``[B, T, L]``, history_mask ``[B, T]``: see :meth:`encode`.
            target_codes: LongTensor ``[B, L]``, the next item's semantic ID.
        Returns:
            list of ``L`` tensors, element ``l`` of shape ``[B, level_sizes[l]]`` =
            logits of ``p(c_l | c_<l, history)``.
        """
        memory, memory_mask = self.encode(history_codes, history_mask, **attn_kwargs)
        h = self.decode_hidden(memory, memory_mask, target_codes[:, : self.n_levels - 1])
        return [self.level_logits(l, h[:, l]) for l in range(self.n_levels)]

    def loss(
        self,
        history_codes: torch.Tensor,
        history_mask: torch.Tensor,
        target_codes: torch.Tensor,
        **attn_kwargs,
    ) -> torch.Tensor:
        """Mean token cross-entropy over all levels and samples (scalar)."""
        logits = self.forward(history_codes, history_mask, target_codes, **attn_kwargs)
        losses = [F.cross_entropy(lg, target_codes[:, l]) for l, lg in enumerate(logits)]
        return torch.stack(losses).mean()

    def target_log_prob(
        self,
        history_codes: torch.Tensor,
        history_mask: torch.Tensor,
        target_codes: torch.Tensor,
        **attn_kwargs,
    ) -> torch.Tensor:
        """``log p(target ID | history) = sum_l log_softmax(logits_l)[c_l]``, shape ``[B]``."""
        logits = self.forward(history_codes, history_mask, target_codes, **attn_kwargs)
        total = torch.zeros(target_codes.shape[0], device=target_codes.device)
        for l, lg in enumerate(logits):
            lp = torch.log_softmax(lg.float(), dim=-1)
            total = total + lp.gather(1, target_codes[:, l : l + 1]).squeeze(1)
        return total


class DecoderState:
    """Cache of an incremental decode (see :meth:`SemanticIDGenerator.decode_step`).

    Attributes: ``memory_mask [B, S]``; ``cross_kv`` (per decoder layer, projected memory,
    never copied per beam); ``self_kv`` (per layer, ``[B', H, l, d_head]`` keys/values of the
    positions fed so far); ``length`` (positions fed); ``start`` (``[B, d]``, the first
    decoder input per memory row).
    """

    def __init__(self, memory_mask, cross_kv, self_kv, start: torch.Tensor):
        self.memory_mask = memory_mask
        self.start = start
        self.cross_kv = cross_kv
        self.self_kv = self_kv
        self.length = 0

    def reorder(self, index: torch.Tensor) -> None:
        """Row ``r`` of the decoded sequences becomes old row ``index[r]`` (beam selection).

        ``index`` must keep rows grouped per memory row: ``index.numel()`` is a multiple of
        ``B`` and new rows ``b*G' .. b*G'+G'-1`` come from old rows of memory row ``b``.
        """
        self.self_kv = [
            None if kv is None else (kv[0].index_select(0, index), kv[1].index_select(0, index))
            for kv in self.self_kv
        ]
