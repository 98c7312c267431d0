"""LETTER-TIGER (Wang et al., "Learnable Item Tokenization for Generative Recommendation",
CIKM 2024): TIGER with LETTER's tokenizer (:mod:`recbole_bbq.modules.letter_tokenizer`).

Stage 1 needs a collaborative embedding per item. By default a RecBole SASRec with
``letter_cf_dim``-wide embeddings is trained on the TRAINING split (the same batches stage 2
uses) for ``letter_cf_epochs`` epochs, in a child process (``letter_cf_isolated``), so one
command runs everything;
``letter_cf_checkpoint`` loads the ``item_embedding`` of a saved RecBole SASRec instead.
The RQ-VAE then trains on the items with the collaborative and diversity losses and
Sinkhorn assignment at the last level; the code clusters of the diversity loss are refreshed
at the start of every epoch. Read-out follows the release: nearest codes, then Sinkhorn
re-assignment of colliding groups; TIGER's extra level handles anything left.
Stage 2 is TIGER's generator and beam search.
"""
from __future__ import annotations

import copy
import os
from logging import getLogger

import numpy as np
import torch

from recbole_bbq import compat
from recbole_bbq.data.alignment import align_rows
from recbole_bbq.fileio import file_sha256
from recbole_bbq.model.tiger import TIGER
from recbole_bbq.modules.letter_tokenizer import LetterTokenizer
from recbole_bbq.modules.semantic_ids import build_semantic_ids, codebook_utilisation
from recbole_bbq.trainer.collaborative import fit_in_child_process, fit_sasrec_item_embeddings


class LETTER(TIGER):
    """LETTER-TIGER; configuration in ``properties/model/LETTER.yaml`` (after TIGER.yaml)."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.cf_dim = int(config["letter_cf_dim"])
        if self.rqvae is not None and self.cf_dim != int(config["codebook_dim"]):
            raise ValueError(
                f"LETTER aligns quantized latents (codebook_dim={config['codebook_dim']}) with "
                f"collaborative embeddings (letter_cf_dim={self.cf_dim}) by dot product; "
                f"set both to the same size"
            )
        # collaborative embeddings by internal item id (row 0 = padding); set in stage 1
        self.register_buffer("cf_embeddings", torch.zeros(0, self.cf_dim), persistent=False)
        self._epoch = 0

    @classmethod
    def build_rqvae(cls, input_dim: int, config) -> LetterTokenizer:
        return LetterTokenizer(
            input_dim,
            **cls.rqvae_kwargs(config),
            sinkhorn_epsilons=cls._epsilons(config),
            sinkhorn_iters=int(config["sinkhorn_iters"]),
            cf_weight=float(config["cf_weight"]),
            diversity_weight=float(config["diversity_weight"]),
            n_clusters=int(config["diversity_clusters"]),
        )

    @staticmethod
    def _epsilons(config) -> list:
        n_levels = int(config["n_levels"])
        epsilons = config["sinkhorn_epsilons"]
        if epsilons is None:
            return [0.0] * n_levels
        if isinstance(epsilons, (int, float)):  # one value: the last level only
            return [0.0] * (n_levels - 1) + [float(epsilons)]
        epsilons = [float(e) for e in epsilons]
        if len(epsilons) != n_levels:
            raise ValueError(
                f"sinkhorn_epsilons={epsilons} has {len(epsilons)} values for n_levels="
                f"{n_levels}; give one per level or a single number for the last level"
            )
        return epsilons

    # ---------------------------------------------------------------- collaborative signal
    def _train_sasrec_embeddings(self, train_data) -> torch.Tensor:
        """Item embeddings of a RecBole SASRec trained on the training batches.

        It trains in a child process (``letter_cf_isolated``, default on), which leaves the
        parent's memory and random state untouched. (The 2x slowdown of later generator
        steps that first motivated it was RecBole's model import turning on autograd's
        anomaly detection; ``compat.anomaly_mode_kept`` now prevents it in-process too.)
        """
        logger = getLogger()
        cf_config = copy.deepcopy(self.config)
        overrides = {
            "model": "SASRec", "hidden_size": self.cf_dim,
            "inner_size": int(self.config["letter_cf_inner_size"]),
            "n_layers": 2, "n_heads": 2, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
            "loss_type": "CE", "epochs": int(self.config["letter_cf_epochs"]),
            "learning_rate": float(self.config["letter_cf_learning_rate"]),
            "learner": "adam", "weight_decay": 0.0, "clip_grad_norm": None,
            # RecBole's constant rate, not the generator's recipe
            "lr_scheduler": "constant", "warmup_steps": 0, "weight_decay_scope": "all",
        }
        for key, value in overrides.items():
            cf_config[key] = value
        isolated = self.config["letter_cf_isolated"] is not False
        logger.info(
            f"LETTER: training a {self.cf_dim}-d SASRec for {overrides['epochs']} epochs on the "
            f"training split (collaborative embeddings"
            + (", in a child process)" if isolated else ")")
        )
        if not isolated:
            return fit_sasrec_item_embeddings(cf_config, train_data)
        return fit_in_child_process(cf_config, train_data).to(self.device)

    def _load_sasrec_embeddings(self, path: str) -> torch.Tensor:
        """``item_embedding`` of a RecBole SASRec checkpoint, or the collaborative embeddings
        stored in an earlier LETTER tokenizer checkpoint (re-aligned by item token)."""
        state = compat.load_checkpoint(path, map_location="cpu")
        tokenizer = state.get("tokenizer") if isinstance(state, dict) else None
        if isinstance(tokenizer, dict) and "cf_embeddings" in tokenizer:
            rows, missing = align_rows(tokenizer["item_tokens"], self.item_tokens)
            if missing:
                raise ValueError(
                    f"letter_cf_checkpoint {path} has no collaborative embedding for "
                    f"{len(missing)} items of this dataset (first: {missing[:5]})"
                )
            rows = torch.from_numpy(np.concatenate([[0], rows]))
            weights = {"item_embedding.weight": tokenizer["cf_embeddings"][rows]}
        else:
            weights = state.get("state_dict", state) if isinstance(state, dict) else None
        if not isinstance(weights, dict) or "item_embedding.weight" not in weights:
            raise ValueError(
                f"letter_cf_checkpoint {path} holds no 'item_embedding.weight'; expected a "
                f"RecBole SASRec checkpoint (saved/SASRec-*.pth) or a LETTER tokenizer"
            )
        table = weights["item_embedding.weight"]
        if tuple(table.shape) != (self.n_items, self.cf_dim):
            raise ValueError(
                f"letter_cf_checkpoint {path}: item_embedding is {tuple(table.shape)}, this "
                f"dataset needs ({self.n_items}, {self.cf_dim}) (items incl. padding x "
                f"letter_cf_dim); train the SASRec on the same dataset config with "
                f"hidden_size={self.cf_dim}"
            )
        return table.float()

    # ---------------------------------------------------------------- stage 1
    def tokenizer_init(self, train_data) -> None:
        if self.cf_embeddings.numel() == 0:
            path = self.config["letter_cf_checkpoint"]
            if path and os.path.isfile(path):  # hashed before it is read: what was loaded
                self.input_sha256["letter_cf_checkpoint"] = file_sha256(path)
            table = (self._load_sasrec_embeddings(path) if path
                     else self._train_sasrec_embeddings(train_data))
            self.cf_embeddings = table.to(self.device)
        super().tokenizer_init(train_data)

    def tokenizer_batches(self, train_data):
        self.rqvae.refresh_code_clusters(seed=self.seed + self._epoch)
        self._epoch += 1
        return super().tokenizer_batches(train_data)

    def calculate_tokenizer_loss(self, batch) -> dict:
        out = self.rqvae(self.content[batch], self.cf_embeddings[batch])
        return {k: out[k] for k in ("loss", "recon", "rq", "cf", "diversity")}

    @torch.no_grad()
    def _resolved_codes(self):
        """Nearest codes, then the Sinkhorn re-assignment of colliding groups, and the
        collision statistics before and after it."""
        was_training = self.rqvae.training
        self.rqvae.eval()
        result = self.rqvae.resolve_collisions_with_sinkhorn(self.content[1:], self.nearest_codes())
        self.rqvae.train(was_training)
        return result

    @torch.no_grad()
    def compute_item_codes(self):
        return self._resolved_codes()[0], self.code_level_sizes

    @torch.no_grad()
    def tokenizer_diagnostics(self) -> dict:
        self.eval()
        codes, before, after = self._resolved_codes()
        return {
            "utilisation": codebook_utilisation(codes, self.code_level_sizes),
            "colliding_items_before_sinkhorn": before["colliding_items"],
            "colliding_items": after["colliding_items"],
        }

    @torch.no_grad()
    def build_semantic_ids(self):
        self.eval()
        codes, before, _ = self._resolved_codes()
        semantic_ids = build_semantic_ids(codes, self.code_level_sizes, self.resolve_collisions)
        semantic_ids.stats["collisions_before_sinkhorn"] = before
        return semantic_ids

    def tokenizer_state_dict(self) -> dict:
        return {"rqvae": self.rqvae.state_dict(), "cf_embeddings": self.cf_embeddings.cpu(),
                "item_tokens": list(self.item_tokens)}

    def load_tokenizer_state_dict(self, state: dict) -> None:
        self.rqvae.load_state_dict(state["rqvae"])
