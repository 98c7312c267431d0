"""BBQRec (Behavior-Bind multi-modal Quantization for sequential recommendation) and its ablations.

Stage 1 (paper sec. 4.1, eq. 2-13): :class:`~recbole_bbq.modules.bbq_tokenizer.BBQTokenizer`
-- behavior-aligned and modality-specific encoders per modality, CLUB mutual-information
minimisation, ONE residual codebook shared by the ID signal and every modality, decoders,
and the sequence-to-item contrastive task -- trained on the TRAINING split's sequences.
Each item's semantic ID has one token per level: the tuple of its signals' codes at that
level (:func:`~recbole_bbq.modules.semantic_ids.tuple_tokens`), plus TIGER's extra level
only if items still collide.

Stage 2 (sec. 4.2, eq. 14-17): the shared generator whose encoder self-attention is
:class:`~recbole_bbq.modules.similarity_attention.SimilarityAttention`, fed with bucketed
cosine similarities of the frozen stage-1 item vectors ``v`` (kept in the ``item_vectors``
buffer, saved with every checkpoint).

Every ablation is this class with other configuration (``properties/model/BBQRec_*.yaml``
hold only the switches; ``BBQRec.yaml`` is loaded first):

============================  ==================================================
``use_id_signal``             learnable ID embedding as a signal (eq. 4)
``use_mim``                   modality-specific encoders + L_MIM (eq. 2-3, 8)
``use_rec``                   sequence-to-item contrastive L_Rec (eq. 10-12)
``shared_codebook``           one codebook for all signals (False: ``noU``)
``drop_signals``              content modalities left out everywhere
``similarity_attention``      similarity-enhanced encoder attention (eq. 14-17)
``inherit_codebook_embeddings``  ``E``: token embeddings from the codebooks
============================  ==================================================
"""
from __future__ import annotations

import functools
from logging import getLogger

import numpy as np
import torch

from recbole_bbq.data.alignment import align_rows
from recbole_bbq.data.features import dataset_modalities, load_item_features
from recbole_bbq.model.generative import GenerativeRecommender
from recbole_bbq.modules.bbq_tokenizer import BBQTokenizer, signal_utilisation
from recbole_bbq.modules.generator import SemanticIDGenerator
from recbole_bbq.modules.semantic_ids import (
    SemanticIDs,
    build_semantic_ids,
    collision_stats,
    tuple_tokens,
)
from recbole_bbq.modules.similarity_attention import SimilarityAttention, similarity_buckets

_CHUNK = 4096  # items per forward pass when reading out codes / vectors


def _as_list(value) -> list:
    """A config value as a list of names (``--drop_signals=image`` gives a bare string)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class BBQRec(GenerativeRecommender):
    """BBQRec; see the module docstring. Configuration: ``properties/model/BBQRec.yaml``."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        name = type(self).__name__
        configured = dataset_modalities(config, _as_list(config["modalities"]))
        drop = _as_list(config["drop_signals"])
        unknown = [m for m in drop if m not in configured]
        if unknown:
            raise ValueError(
                f"{name} drops the {', '.join(repr(m) for m in unknown)} modality, but the "
                f"configured modalities are {configured}; set --modalities to a list that "
                f"contains it (e.g. --modalities=[text,image]) or pick another variant"
            )
        modalities = [m for m in configured if m not in drop]
        if not modalities:
            raise ValueError(
                f"{name} needs at least one content modality; configured {configured}, "
                f"dropped {drop}"
            )
        use_id = bool(config["use_id_signal"])
        use_rec = bool(config["use_rec"])
        if use_id and not use_rec:
            getLogger().warning(
                f"{name}: the ID embedding is only trained by the contrastive task; with "
                f"use_rec=False it stays at its random initialisation"
            )

        features = load_item_features(config, dataset, modalities, config["standardize_features"])
        self.modalities = list(features)
        self.feature_encoders = {m: f.encoder for m, f in features.items()}
        for m, f in features.items():
            # inputs, not parameters: buffers move with the model and skip the optimiser
            self.register_buffer(f"features_{m}", f.values, persistent=False)
            self.register_buffer(f"present_{m}", f.present, persistent=False)

        self.tokenizer = BBQTokenizer(
            {m: f.dim for m, f in features.items()},
            n_items=self.n_items,
            use_id=use_id,
            use_mim=bool(config["use_mim"]),
            use_rec=use_rec,
            shared_codebook=bool(config["shared_codebook"]),
            latent_dim=int(config["codebook_dim"]),
            n_levels=int(config["n_levels"]),
            codebook_size=int(config["codebook_size"]),
            commitment=float(config["commitment"]),
            hidden_dims=list(config["encoder_hidden_dims"]),
            dropout=float(config["tokenizer_dropout"] or 0.0),
            club_hidden_dim=int(config["club_hidden_dim"]),
            id_init_range=float(config["id_init_range"]),
            max_seq_length=self.max_seq_length,
            seq_n_layers=int(config["seq_n_layers"]),
            seq_n_heads=int(config["seq_n_heads"]),
            seq_inner_size=int(config["seq_inner_size"]),
            seq_dropout=float(config["seq_dropout"]),
            temperature=float(config["temperature"]),
            rec_weight=float(config["rec_weight"]),
            mim_weight=float(config["mim_weight"]),
            # None (an explicit null, e.g. ``--latent_norm=``; the YAML gives every run a
            # value): the behaviour the tokenizer had before these keys existed
            latent_norm=str(config["latent_norm"] or "none"),
            loss_reduction=str(config["loss_reduction"] or "mean"),
            mim_gradient=str(config["mim_gradient"] or "both"),
            dead_code_reset=int(config["dead_code_reset"] or 0),
            codebook_init=str(config["codebook_init"] or "pooled"),
            length_buckets=self.length_buckets,
        )
        self.similarity_attention = bool(config["similarity_attention"])
        self.sim_buckets = int(config["sim_buckets"])
        self.inherit_codebook_embeddings = bool(config["inherit_codebook_embeddings"])
        self.kmeans_init_enabled = bool(config["kmeans_init"])
        self.seed = int(config["seed"])
        # frozen stage-1 item vectors v (eq. 10), row = item id; saved in checkpoints
        self.register_buffer("item_vectors", torch.zeros(0, 0))
        self._restoring = False

    # ---------------------------------------------------------------- inputs
    def _features(self, items: torch.Tensor) -> dict:
        return {m: getattr(self, f"features_{m}")[items] for m in self.modalities}

    def _present(self, items: torch.Tensor) -> dict:
        return {m: getattr(self, f"present_{m}")[items] for m in self.modalities}

    @torch.no_grad()
    def _quantize_all(self):
        """Per-signal codes ``[S, n_items-1, L]`` and vectors ``v [n_items-1, dim]`` (items 1..)."""
        was_training = self.tokenizer.training
        self.tokenizer.eval()
        codes, vectors = [], []
        for start in range(1, self.n_items, _CHUNK):
            items = torch.arange(start, min(start + _CHUNK, self.n_items), device=self.device)
            c, v = self.tokenizer.quantize(self._features(items), items)
            codes.append(c)
            vectors.append(v)
        self.tokenizer.train(was_training)
        return torch.cat(codes, dim=1), torch.cat(vectors)

    # ---------------------------------------------------------------- stage 1
    def tokenizer_parameters(self):
        return self.tokenizer.parameters()

    def tokenizer_init(self, train_data) -> None:
        # content features and the (still random) ID embeddings only: no interaction data
        if self.kmeans_init_enabled and not self.tokenizer.initialised:
            items = torch.arange(1, self.n_items, device=self.device)
            self.tokenizer.kmeans_init(self._features(items), items, seed=self.seed)

    def tokenizer_batches(self, train_data):
        """RecBole training batches (every prefix of the TRAINING part of each sequence)."""
        for interaction in train_data:
            yield interaction.to(self.device)

    def calculate_tokenizer_loss(self, batch) -> dict:
        lengths = batch[self.ITEM_SEQ_LEN]
        seq = batch[self.ITEM_SEQ][:, : max(int(lengths.max()), 1)].contiguous()
        target = batch[self.POS_ITEM_ID]
        real = seq > 0
        items = torch.unique(torch.cat([seq[real], target]))  # sorted distinct real items
        history_index = torch.searchsorted(items, seq).masked_fill(~real, -1)
        target_index = torch.searchsorted(items, target)
        return self.tokenizer(
            self._features(items), items, history_index, target_index, self._present(items)
        )

    @torch.no_grad()
    def per_signal_codes(self) -> np.ndarray:
        """Codes of every signal, ``[S, n_items - 1, L]`` (signals in ``tokenizer.signals``)."""
        return self._quantize_all()[0].cpu().numpy()

    def compute_item_codes(self):
        return tuple_tokens(self.per_signal_codes())

    def _utilisation(self, per_signal: np.ndarray) -> dict:
        t = self.tokenizer
        return signal_utilisation(per_signal, t.signals, t.codebook_size, t.shared_codebook)

    @torch.no_grad()
    def build_semantic_ids(self) -> SemanticIDs:
        """Tuple tokens per level, then collisions / the extra level as for every tokenizer.

        ``stats['utilisation']`` is the utilisation of the codebook(s) per level (the tuple
        vocabulary is by construction fully used); ``signal_utilisation`` splits it per
        signal and ``level_vocabulary`` gives the number of distinct tuples per level.
        """
        self.eval()
        per_signal = self.per_signal_codes()
        codes, level_sizes = tuple_tokens(per_signal)
        semantic_ids = build_semantic_ids(codes, level_sizes, self.resolve_collisions)
        util = self._utilisation(per_signal)
        semantic_ids.stats.update(
            utilisation=util["overall"],
            signal_utilisation=util["per_signal"],
            level_vocabulary=list(level_sizes),
            signals=list(self.tokenizer.signals),
        )
        return semantic_ids

    @torch.no_grad()
    def tokenizer_diagnostics(self) -> dict:
        self.eval()
        per_signal = self.per_signal_codes()
        util = self._utilisation(per_signal)
        return {
            "utilisation": util["overall"],
            "signal_utilisation": util["per_signal"],
            "colliding_items": collision_stats(tuple_tokens(per_signal)[0])["colliding_items"],
        }

    def tokenizer_state_dict(self) -> dict:
        return {"tokenizer": self.tokenizer.state_dict(), "item_tokens": list(self.item_tokens)}

    def load_tokenizer_state_dict(self, state: dict) -> None:
        weights = dict(state["tokenizer"])
        tokens = state.get("item_tokens")
        key = "id_embedding.weight"
        if key in weights and tokens is not None and list(tokens) != self.item_tokens:
            # ID embeddings are rows by internal id: re-align them by item token
            # (items the saved tokenizer never saw keep their fresh initialisation)
            rows, _ = align_rows(tokens, self.item_tokens)
            old = weights[key]
            new = self.tokenizer.id_embedding.weight.detach().clone().to(old.device)
            known = torch.from_numpy(np.flatnonzero(rows >= 0) + 1).to(old.device)
            new[known] = old[torch.from_numpy(rows[rows >= 0]).to(old.device)]
            weights[key] = new
        self.tokenizer.load_state_dict(weights)

    # ---------------------------------------------------------------- semantic IDs / stage 2
    @property
    def generator_uses_tokenizer(self) -> bool:
        return self.similarity_attention or self.inherit_codebook_embeddings

    def set_semantic_ids(self, codes, level_sizes, stats=None) -> None:
        super().set_semantic_ids(codes, level_sizes, stats)
        if self._restoring:  # load_state_dict restores item_vectors and the generator weights
            return
        if self.similarity_attention:
            vectors = self._quantize_all()[1]
            table = vectors.new_zeros(self.n_items, vectors.shape[1])
            table[1:] = vectors
            self.item_vectors = table
        if self.inherit_codebook_embeddings:
            self._inherit_token_embeddings()

    def build_generator(self, level_sizes, **extra) -> SemanticIDGenerator:
        if self.similarity_attention:
            extra["attention_cls"] = functools.partial(SimilarityAttention, n_buckets=self.sim_buckets)
        return super().build_generator(level_sizes, **extra)

    def generator_attention_kwargs(self, item_seq: torch.Tensor) -> dict:
        if not self.similarity_attention:
            return {}
        if self.item_vectors.numel() == 0:
            raise RuntimeError("similarity attention needs the stage-1 item vectors (none set)")
        buckets = similarity_buckets(self.item_vectors[item_seq], item_seq > 0, self.sim_buckets)
        return {"item_sim_buckets": buckets}

    def load_state_dict(self, state_dict, strict: bool = True):
        vectors = state_dict.get("item_vectors")
        if vectors is not None:  # give the buffer the saved shape before the strict load
            self.item_vectors = vectors.detach().clone().to(self.item_vectors.device)
        self._restoring = True
        try:
            return super().load_state_dict(state_dict, strict=strict)
        finally:
            self._restoring = False

    @torch.no_grad()
    def _inherit_token_embeddings(self) -> None:
        """``BBQRec_E``: generator token embeddings from the tokenizer's codebook vectors.

        A level-``l`` token stands for a tuple of codes ``(c^l_s)_s``; its embedding is the
        concatenation of those code vectors (``S * D``) times a fixed random orthogonal map
        to ``d_model`` (seeded by ``seed``), each level's table rescaled to the generator's
        initialisation std so inherited embeddings enter at the scale of the random ones they
        replace (geometry within a level is kept). The embeddings stay trainable. The extra
        disambiguation level, which has no codebook, keeps its random initialisation.
        """
        per_signal = self._quantize_all()[0]  # [S, n-1, L]
        tokens = self.item_codes[1:]  # [n-1, L'] rows of items 1..n-1
        n_signals, _, n_levels = per_signal.shape
        d_model = self.generator.d_model
        gen = torch.Generator().manual_seed(self.seed)
        projection = torch.empty(n_signals * self.tokenizer.latent_dim, d_model)
        torch.nn.init.orthogonal_(projection, generator=gen)
        projection = projection.to(self.device)
        for level in range(n_levels):
            vectors = torch.cat(
                [self.tokenizer.code_vectors(s, level, per_signal[s, :, level])
                 for s in range(n_signals)],
                dim=1,
            ) @ projection  # [n-1, d_model]
            table = self.generator.token_emb[level].weight
            rows = tokens[:, level]
            seen = torch.zeros(table.shape[0], dtype=torch.bool, device=table.device)
            seen[rows] = True
            inherited = table.new_zeros(table.shape).index_copy_(0, rows, vectors)[seen]
            std = inherited.std() if inherited.numel() > 1 else inherited.new_tensor(0.0)
            scale = self.generator.embedding_std / std if std > 0 else 1.0
            table[seen] = inherited * scale


class BBQRec_noMIM(BBQRec):
    """Ablation: no L_MIM and no modality-specific encoders; decoders see q^m only (Table 3)."""


class BBQRec_noRec(BBQRec):
    """Ablation: no sequence-to-item contrastive L_Rec and no ID signal (Table 3)."""


class BBQRec_noU(BBQRec):
    """Ablation: one residual codebook per signal instead of the shared one (Table 3)."""


class BBQRec_S(BBQRec):
    """Ablation: plain encoder self-attention, no similarity module (Table 4)."""


class BBQRec_E(BBQRec):
    """Ablation: no similarity module; token embeddings inherited from the codebooks (Table 4)."""


class BBQRec_noID(BBQRec):
    """Ablation: no learnable ID signal (Figure 4)."""


class BBQRec_noText(BBQRec):
    """Ablation: the text modality left out everywhere (Figure 4)."""


class BBQRec_noImage(BBQRec):
    """Ablation: the image modality left out everywhere (Figure 4)."""
