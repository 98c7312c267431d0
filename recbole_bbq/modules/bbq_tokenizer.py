"""BBQRec's behavior-aligned multimodal item tokenizer (paper sec. 4.1, eq. 2-13).

Signals of an item ``i``: an optional learnable ID embedding ``z^ID_i`` (eq. 4; initialised
uniformly in ``(0, id_init_range)``) and any non-empty set of content modalities ``m`` with
pretrained features ``x^m_i``.

* eq. 2, disentanglement: per modality two MLP encoders to ``D`` -- modality-specific
  ``zbar^m = Enc_mS(x^m)`` and behavior-aligned ``z^m = Enc_mB(x^m)``; their mutual
  information is minimised through the CLUB bound ``L_MIM`` (eq. 3, :mod:`.club`).
* eq. 5-7, behavior quantization: every signal ``s`` is residual-quantized to ``L`` codes and
  ``q^s = sum_l c^l_s`` by ONE :class:`~recbole_bbq.modules.quantizer.ResidualQuantizer`
  shared by all signals (``shared_codebook=False``: one per signal, the ``noU`` ablation).
  Codebooks are initialised by k-means on the first pass (all signals' latents pooled for
  the shared codebook, per signal otherwise).
* eq. 8-9, reconstruction: per modality a decoder maps ``q^m (+) zbar^m`` (``q^m`` alone
  when the specific encoders are disabled) back to ``x^m``. ``L_recon = sum_m MSE(x^m,
  xhat^m)``; ``L_RQ = sum_s L_RQ^s``; ``L_RQ-VAE = L_recon + L_RQ``.
* eq. 10-12, sequence-to-item contrastive task: ``v_i = (+)_s q^s_i`` (concatenation,
  straight-through so the encoders and ID embeddings learn from it); a SASRec-style causal
  transformer ``f`` turns a history ``v_1..v_t`` into ``h_t``; ``L_Rec`` is InfoNCE with
  cosine similarity / tau, positive = the target's ``v``, negatives = the other targets of
  the batch (other rows with the same target item are masked out, not counted as negatives).
* eq. 13: ``L = L_RQ-VAE + beta L_Rec + gamma L_MIM``, plus CLUB's own fitting loss, which
  only trains the variational ``q`` (see :mod:`.club` for the gradient routing).

Framework-free (pure torch); :class:`recbole_bbq.model.bbqrec.BBQRec` wires it to RecBole.
"""
from __future__ import annotations

import functools
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recbole_bbq.modules.club import CLUB
from recbole_bbq.modules.dropout import Dropout
from recbole_bbq.modules.length_buckets import length_sorted_chunks
from recbole_bbq.modules.quantizer import LOSS_REDUCTIONS, ResidualQuantizer
from recbole_bbq.modules.rqvae import mlp
from recbole_bbq.modules.semantic_ids import codebook_utilisation

ID_SIGNAL = "id"
LATENT_NORMS = ("layer", "none")
MIM_GRADIENTS = ("both", "specific")
CODEBOOK_INITS = ("pooled", "balanced")


def normalise_latent(z: torch.Tensor, mode: str) -> torch.Tensor:
    """Parameter-free LayerNorm of a latent (``mode='layer'``) or the latent unchanged.

    Why: the CLUB bound of eq. 3 is unbounded below in the latents' scale -- with ``q``'s
    variance capped, the encoders lower it without limit by inflating ``zbar`` and pushing
    ``mu(z)`` away from it (on Beauty it reached -1.5e12 within one epoch and every item
    collided). Normalising every ``z`` and ``zbar`` to zero mean and unit variance per row
    bounds the bound and puts all signals on one scale, which a SHARED codebook needs.
    """
    if mode == "none":
        return z
    return F.layer_norm(z, z.shape[-1:])


class SequenceEncoder(nn.Module):
    """SASRec-style causal transformer ``f`` (eq. 11): ``h_t`` at each row's last real item.

    Input ``v_hist [B, T, dim]`` right-padded with ``mask [B, T]`` (True = real item, at least
    one per row). Learned position embeddings (0 = oldest), LayerNorm, dropout, post-norm
    transformer layers with a causal mask and padded keys masked out.
    """

    def __init__(self, dim: int, max_len: int, n_layers: int = 2, n_heads: int = 2,
                 inner_size: int = 256, dropout: float = 0.1):
        super().__init__()
        if dim % n_heads != 0:
            raise ValueError(
                f"sequence encoder: item vector dim {dim} (signals x codebook_dim) is not "
                f"divisible by seq_n_heads={n_heads}"
            )
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.position.weight, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim, n_heads, inner_size, dropout, activation="gelu", batch_first=True
        )
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, v_hist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = v_hist.shape
        positions = torch.arange(t, device=v_hist.device)
        x = self.dropout(self.norm(v_hist + self.position(positions)[None]))
        causal = torch.ones(t, t, dtype=torch.bool, device=v_hist.device).triu(1)
        x = self.layers(x, mask=causal, src_key_padding_mask=~mask)
        last = (mask.long().sum(1) - 1).clamp(min=0)
        return x[torch.arange(b, device=x.device), last]


class BBQTokenizer(nn.Module):
    """Behavior-aligned multimodal tokenizer; see the module docstring for the equations.

    Args:
        modality_dims: ``{modality: feature dim}``, non-empty, in signal order.
        n_items: rows of the ID embedding table (item ids incl. padding row 0, unused).
        use_id: add the learnable ID signal.
        use_mim: build the modality-specific encoders and the CLUB term (``noMIM``: neither,
            decoders see ``q^m`` only).
        use_rec: build the sequence encoder and the contrastive term.
        shared_codebook: one residual codebook for all signals (False: one per signal).
        latent_dim, n_levels, codebook_size, commitment: ``D``, ``L``, ``N``, ``alpha``.
        hidden_dims: hidden widths of the MLP encoders (decoders mirror them).
        dropout: dropout of the encoder/decoder MLPs.
        club_hidden_dim: hidden width of CLUB's mean / log-variance MLPs.
        id_init_range: ID embeddings start uniform in ``(0, id_init_range)``.
        max_seq_length, seq_n_layers, seq_n_heads, seq_inner_size, seq_dropout: ``f``.
        temperature, rec_weight, mim_weight: ``tau``, ``beta``, ``gamma``.
        length_buckets: chunks the contrastive task's histories run in (same result, faster).
        latent_norm: ``'layer'`` (default) normalises every latent, see
            :func:`normalise_latent`; ``'none'`` is the paper as written (diverges on Beauty).
        loss_reduction: ``'sum'``: L_recon and L_RQ are squared L2 norms summed over
            dimensions, as eq. 9 writes them and as CLUB's log-density (eq. 3) sums over D;
            ``'mean'``: averaged over dimensions, which weighs L_MIM D times more heavily.
        mim_gradient: which latents L_MIM moves. ``'both'``: ``z^m`` and ``zbar^m``;
            ``'specific'``: only ``zbar^m`` (``z^m`` detached in the bound), so the bound pushes
            modality-specific information out of ``zbar``'s dependence on ``z`` and cannot
            be minimised by emptying the behavior-aligned latent ``z^m``.
        dead_code_reset: see :class:`~recbole_bbq.modules.quantizer.ResidualQuantizer`.
        codebook_init: how the shared codebook's k-means divides the codes among signals:
            ``'pooled'``: one k-means over every signal's latents, so a signal gets codes in
            proportion to its spread (on Beauty the ID latents, the most spread, end with the
            most codes at level 1);
            ``'balanced'``: each signal an equal share, k-means on its own latents. Without
            ``shared_codebook`` each signal has its own codebook and this has no effect.
    """

    def __init__(
        self,
        modality_dims: Mapping[str, int],
        n_items: int,
        use_id: bool = True,
        use_mim: bool = True,
        use_rec: bool = True,
        shared_codebook: bool = True,
        latent_dim: int = 128,
        n_levels: int = 3,
        codebook_size: int = 256,
        commitment: float = 0.25,
        hidden_dims: Sequence[int] = (512, 256),
        dropout: float = 0.0,
        club_hidden_dim: int = 64,
        id_init_range: float = 0.01,
        max_seq_length: int = 50,
        seq_n_layers: int = 2,
        seq_n_heads: int = 2,
        seq_inner_size: int = 256,
        seq_dropout: float = 0.1,
        temperature: float = 0.1,
        rec_weight: float = 1.0,
        mim_weight: float = 1.0,
        latent_norm: str = "layer",
        length_buckets: int = 4,
        loss_reduction: str = "mean",
        mim_gradient: str = "specific",
        dead_code_reset: int = 0,
        codebook_init: str = "pooled",
    ):
        super().__init__()
        for name, value, allowed in (("latent_norm", latent_norm, LATENT_NORMS),
                                     ("loss_reduction", loss_reduction, LOSS_REDUCTIONS),
                                     ("mim_gradient", mim_gradient, MIM_GRADIENTS),
                                     ("codebook_init", codebook_init, CODEBOOK_INITS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
        self.loss_reduction = loss_reduction
        self.mim_gradient = mim_gradient
        self.codebook_init = codebook_init
        self.latent_norm = latent_norm
        self.length_buckets = int(length_buckets)
        self.modalities = list(modality_dims)
        if not self.modalities:
            raise ValueError("BBQTokenizer needs at least one content modality")
        if ID_SIGNAL in self.modalities:
            raise ValueError(f"'{ID_SIGNAL}' is the ID signal's name; rename that modality")
        self.use_id, self.use_mim, self.use_rec = bool(use_id), bool(use_mim), bool(use_rec)
        self.shared_codebook = bool(shared_codebook)
        self.signals = ([ID_SIGNAL] if self.use_id else []) + self.modalities
        if codebook_init == "balanced" and shared_codebook and codebook_size < len(self.signals):
            raise ValueError(f"codebook_init 'balanced' gives each of the {len(self.signals)} "
                             f"signals a share of the codes, but codebook_size is {codebook_size}")
        self.latent_dim = int(latent_dim)
        self.temperature = float(temperature)
        self.rec_weight, self.mim_weight = float(rec_weight), float(mim_weight)
        hidden = list(hidden_dims)
        d = self.latent_dim

        self.behavior_encoders = nn.ModuleDict(
            {m: mlp([dim, *hidden, d], dropout) for m, dim in modality_dims.items()}
        )
        self.specific_encoders = (
            nn.ModuleDict({m: mlp([dim, *hidden, d], dropout) for m, dim in modality_dims.items()})
            if self.use_mim else None
        )
        self.club = (
            nn.ModuleDict({m: CLUB(d, d, club_hidden_dim) for m in self.modalities})
            if self.use_mim else None
        )
        decoder_in = 2 * d if self.use_mim else d
        self.decoders = nn.ModuleDict(
            {m: mlp([decoder_in, *reversed(hidden), dim], dropout)
             for m, dim in modality_dims.items()}
        )
        if self.use_id:
            self.id_embedding = nn.Embedding(n_items, d)
            nn.init.uniform_(self.id_embedding.weight, 0.0, id_init_range)
        else:
            self.id_embedding = None
        n_books = 1 if self.shared_codebook else len(self.signals)  # see quantizer()
        self.quantizers = nn.ModuleList(
            ResidualQuantizer(n_levels, codebook_size, d, commitment, loss_reduction,
                              dead_code_reset)
            for _ in range(n_books)
        )
        self.sequence_encoder = (
            SequenceEncoder(len(self.signals) * d, max_seq_length, seq_n_layers, seq_n_heads,
                            seq_inner_size, seq_dropout)
            if self.use_rec else None
        )

    # ------------------------------------------------------------------ helpers
    @property
    def n_levels(self) -> int:
        return self.quantizers[0].n_levels

    @property
    def codebook_size(self) -> int:
        return self.quantizers[0].codebook_size

    @property
    def item_dim(self) -> int:
        """Dimension of ``v`` (signals x D)."""
        return len(self.signals) * self.latent_dim

    def quantizer(self, signal_index: int) -> ResidualQuantizer:
        """The residual quantizer of one signal (paper eqs. 5-7: nearest code, residual, their
        sum). With ``shared_codebook`` (the paper's unified, behaviour-dominated codebook, sec.
        4.1.2) every signal -- ID, text, image -- is quantized by the same codebooks,
        k-means-initialised on the signals' latents as ``codebook_init`` says (:meth:`kmeans_init`);
        ``BBQRec_noU`` gives each signal its own. Every signal reaches its codebooks here."""
        return self.quantizers[0 if self.shared_codebook else signal_index]

    @property
    def initialised(self) -> bool:
        return all(bool(q.initialised) for q in self.quantizers)

    def latents(self, x: Mapping[str, torch.Tensor], item_ids: torch.Tensor):
        """``z`` per signal (``{signal: [n, D]}``) and ``zbar`` per modality (empty without MIM)."""
        z = {}
        if self.use_id:
            z[ID_SIGNAL] = self.id_embedding(item_ids)
        for m in self.modalities:
            z[m] = self.behavior_encoders[m](x[m])
        zbar = {m: self.specific_encoders[m](x[m]) for m in self.modalities} if self.use_mim else {}
        norm = functools.partial(normalise_latent, mode=self.latent_norm)
        return {s: norm(v) for s, v in z.items()}, {m: norm(v) for m, v in zbar.items()}

    # ------------------------------------------------------------------ codebook init
    @torch.no_grad()
    def kmeans_init(self, x: Mapping[str, torch.Tensor], item_ids: torch.Tensor, seed: int = 0,
                    chunk_size: int = 4096):
        """k-means codebooks from the latents of ``item_ids``: one per signal, or for the shared
        codebook over all signals' latents, divided among them as ``codebook_init`` says."""
        was_training = self.training
        self.eval()
        parts = [
            self.latents({m: x[m][i : i + chunk_size] for m in self.modalities},
                         item_ids[i : i + chunk_size])[0]
            for i in range(0, len(item_ids), chunk_size)
        ]
        z = {s: torch.cat([p[s] for p in parts]) for s in self.signals}
        if self.shared_codebook:
            groups = [len(z[s]) for s in self.signals] if self.codebook_init == "balanced" else None
            self.quantizers[0].kmeans_init(torch.cat([z[s] for s in self.signals]), seed=seed,
                                           groups=groups)
        else:
            for i, s in enumerate(self.signals):
                self.quantizers[i].kmeans_init(z[s], seed=seed + i)
        self.train(was_training)

    # ------------------------------------------------------------------ losses
    def forward(
        self,
        x: Mapping[str, torch.Tensor],
        item_ids: torch.Tensor,
        history_index: Optional[torch.Tensor] = None,
        target_index: Optional[torch.Tensor] = None,
        present: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> Dict[str, torch.Tensor]:
        """All stage-1 losses for a batch.

        Args:
            x: ``{modality: [n, d_m]}`` features of the batch's ``n`` distinct items.
            item_ids: ``[n]`` their item ids (rows of the ID embedding).
            history_index: ``[B, T]`` row in ``0..n-1`` of each history item, -1 = padding
                (right-padded, at least one real item per row). Needed when ``use_rec``.
            target_index: ``[B]`` row of each next (target) item.
            present: optional ``{modality: bool [n]}``; rows without source features are left
                out of that modality's reconstruction loss.
        Returns:
            ``loss`` (optimised total) and the unweighted components ``recon``, ``rq``,
            ``rec``, ``mim`` (the CLUB estimate, summed over modalities), ``club_fit``.
        """
        z, zbar = self.latents(x, item_ids)
        zero = next(iter(z.values())).new_zeros(())
        q, rq = {}, zero
        for i, s in enumerate(self.signals):
            out = self.quantizer(i)(z[s])
            q[s], rq = out.quantized, rq + out.loss

        recon = zero
        for m in self.modalities:
            dec_in = torch.cat([q[m], zbar[m]], dim=1) if self.use_mim else q[m]
            diff = (self.decoders[m](dec_in) - x[m]).pow(2)
            err = diff.sum(1) if self.loss_reduction == "sum" else diff.mean(1)
            if present is not None:
                keep = present[m].to(err.dtype)
                recon = recon + (err * keep).sum() / keep.sum().clamp(min=1.0)
            else:
                recon = recon + err.mean()

        mim, club_fit = zero, zero
        if self.use_mim:
            for m in self.modalities:
                z_m = z[m].detach() if self.mim_gradient == "specific" else z[m]
                mim = mim + self.club[m].mi_upper_bound(z_m, zbar[m])
                club_fit = club_fit + self.club[m].learning_loss(z[m], zbar[m])

        rec = zero
        if self.use_rec:
            if history_index is None or target_index is None:
                raise ValueError("the contrastive task needs history_index and target_index")
            v = torch.cat([q[s] for s in self.signals], dim=1)
            rec = self.rec_loss(v, history_index, target_index, item_ids[target_index])

        loss = recon + rq + self.rec_weight * rec + self.mim_weight * mim + club_fit
        return {"loss": loss, "recon": recon, "rq": rq, "rec": rec, "mim": mim,
                "club_fit": club_fit}

    def rec_loss(self, v: torch.Tensor, history_index: torch.Tensor, target_index: torch.Tensor,
                 target_ids: torch.Tensor) -> torch.Tensor:
        """InfoNCE of eq. 12 with in-batch negatives; duplicates of a row's target are masked."""
        h = self.encode_histories(v, history_index)
        logits = F.normalize(h, dim=-1) @ F.normalize(v[target_index], dim=-1).t()
        logits = logits / self.temperature
        same = target_ids[:, None] == target_ids[None, :]
        eye = torch.eye(len(target_ids), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        labels = torch.arange(len(target_ids), device=logits.device)
        return F.cross_entropy(logits, labels)

    def encode_histories(self, v: torch.Tensor, history_index: torch.Tensor) -> torch.Tensor:
        """``h_t`` of every history, run as ``length_buckets`` length-sorted, trimmed chunks
        (same result per row as the padded batch; :mod:`.length_buckets`)."""
        rows_out, outputs = [], []
        for rows, width in length_sorted_chunks((history_index >= 0).sum(1), self.length_buckets):
            index = history_index[rows, :width]
            mask = index >= 0
            v_hist = v[index.clamp(min=0)] * mask.unsqueeze(-1).to(v.dtype)
            rows_out.append(rows)
            outputs.append(self.sequence_encoder(v_hist, mask))
        return torch.cat(outputs)[torch.argsort(torch.cat(rows_out))]

    # ------------------------------------------------------------------ read-out
    @torch.no_grad()
    def quantize(self, x: Mapping[str, torch.Tensor], item_ids: torch.Tensor):
        """Codes ``[S, n, L]`` per signal and item vectors ``v [n, S*D]`` (no gradients)."""
        z, _ = self.latents(x, item_ids)
        codes, parts = [], []
        for i, s in enumerate(self.signals):
            c = self.quantizer(i).encode(z[s])
            codes.append(c)
            parts.append(self.quantizer(i).decode(c))
        return torch.stack(codes), torch.cat(parts, dim=1)

    def code_vectors(self, signal_index: int, level: int, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors ``[n, D]`` of ``codes [n]`` at ``level`` for a signal."""
        return self.quantizer(signal_index).codebooks[level][codes]


def signal_utilisation(per_signal_codes: np.ndarray, signals: Sequence[str], codebook_size: int,
                       shared_codebook: bool) -> dict:
    """Codebook utilisation per level, overall and per signal.

    ``overall[l]``: fraction of the level's codes used by any signal of any item (with one
    codebook per signal: used (signal, code) pairs over ``S * N``). ``per_signal[s][l]``:
    fraction of the codes that signal ``s``'s items use.
    """
    codes = np.asarray(per_signal_codes)
    n_signals, _, n_levels = codes.shape
    sizes = [codebook_size] * n_levels
    per_signal = {s: codebook_utilisation(codes[i], sizes) for i, s in enumerate(signals)}
    overall = []
    for l in range(n_levels):
        if shared_codebook:
            overall.append(float(len(np.unique(codes[:, :, l])) / codebook_size))
        else:
            used = sum(len(np.unique(codes[i, :, l])) for i in range(n_signals))
            overall.append(float(used / (n_signals * codebook_size)))
    return {"overall": overall, "per_signal": per_signal}
