"""Base class of the two-stage generative recommenders (TIGER, LETTER, BBQRec and variants).

Stage 1 trains an item tokenizer and turns every item into a semantic ID (a tuple of codes,
one per level). Stage 2 trains :class:`~recbole_bbq.modules.generator.SemanticIDGenerator`
to generate the next item's ID from the history's IDs, and ranks the catalogue by
constrained beam search. :class:`~recbole_bbq.trainer.TwoStageTrainer` drives both stages;
a subclass only says how its tokenizer is built, trained and read out.

RecBole integration: ``calculate_loss`` is the stage-2 loss, ``full_sort_predict`` returns
an ``[batch, n_items]`` matrix holding the beam's log-probabilities for the generated items
and ``-inf`` elsewhere. ``beam_size >= max(topk)`` is enforced, so every row has at least
``max(topk)`` finite scores and RecBole's top-k never picks among ``-inf`` ties (which
could count a target the model never generated as a hit).
"""
from __future__ import annotations

import numpy as np
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType

from recbole_bbq.modules.beam_search import (
    SemanticIDTrie,
    constrained_beam_search,
    scores_for_all_items,
)
from recbole_bbq.modules.generator import SemanticIDGenerator
from recbole_bbq.modules.length_buckets import length_sorted_chunks, resolve_length_buckets
from recbole_bbq.modules.semantic_ids import (
    SemanticIDs,
    build_semantic_ids,
    codebook_utilisation,
    collision_stats,
)


_COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune")


class GenerativeRecommender(SequentialRecommender):
    input_type = InputType.POINTWISE
    is_generative = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.config = config
        self.beam_size = int(config["beam_size"])
        # what each level adds to a beam's score (constrained_beam_search's level_scores):
        # the model's log-probability; benchmarks/probe_level_normalisation.py switches it
        self.beam_level_scores = "model"
        topk = config["topk"]
        max_topk = max(topk) if isinstance(topk, (list, tuple)) else int(topk)
        if self.beam_size < max_topk:
            raise ValueError(
                f"beam_size={self.beam_size} is smaller than max(topk)={max_topk}: rows would "
                f"hold fewer finite scores than the cut-off and RecBole's top-k would pick "
                f"among -inf ties. Set beam_size >= {max_topk}."
            )
        self.resolve_collisions = bool(config["resolve_collisions"])
        self.length_buckets = resolve_length_buckets(config["length_buckets"], config["device"])
        # item tokens by internal id: tokenizer files are keyed by token, not by internal id
        self.item_tokens = list(dataset.field2id_token[dataset.iid_field])
        self.register_buffer("item_codes", torch.zeros(0, 0, dtype=torch.long))
        self.register_buffer("level_sizes", torch.zeros(0, dtype=torch.long))
        self.generator = None
        self.trie = None
        self.semantic_id_stats = {}
        # SHA-256 of each input file stage 1 read, by its config key (a loaded
        # tokenizer_checkpoint, LETTER's letter_cf_checkpoint): the run record keeps them, and
        # adoption checks them
        self.input_sha256 = {}
        self.compile_mode = config["compile_generator"]
        if self.compile_mode in (False, "none", "eager"):
            self.compile_mode = None
        self.compile_backend = config["compile_backend"]
        if self.compile_mode not in _COMPILE_MODES:
            raise ValueError(f"compile_generator={self.compile_mode!r}: use one of "
                             f"{', '.join(map(str, _COMPILE_MODES))} (~ for eager)")
        # the stage-2 loss as calculate_loss calls it: the generator's own, or compiled
        self.generator_loss = None

    # ------------------------------------------------------------------ stage 1 (subclass)
    def tokenizer_parameters(self):
        raise NotImplementedError

    def tokenizer_init(self, train_data) -> None:
        """Anything to do before the first tokenizer epoch (e.g. k-means codebook init)."""

    def tokenizer_batches(self, train_data):
        """Iterable of batches for one tokenizer epoch."""
        raise NotImplementedError

    def calculate_tokenizer_loss(self, batch) -> dict:
        """Scalar tensors for one batch; ``loss`` is the total that is optimised."""
        raise NotImplementedError

    def compute_item_codes(self):
        """``(codes [n_items - 1, L] for items 1..n-1, level_sizes)`` from the trained tokenizer."""
        raise NotImplementedError

    @torch.no_grad()
    def tokenizer_diagnostics(self) -> dict:
        """The trainer's periodic stage-1 check: codebook utilisation per level and the
        number of items sharing an ID (BBQRec adds utilisation per signal)."""
        self.eval()
        codes, level_sizes = self.compute_item_codes()
        return {
            "utilisation": codebook_utilisation(codes, level_sizes),
            "colliding_items": collision_stats(codes)["colliding_items"],
        }

    def tokenizer_state_dict(self) -> dict:
        raise NotImplementedError

    def load_tokenizer_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ semantic IDs
    @torch.no_grad()
    def build_semantic_ids(self) -> SemanticIDs:
        self.eval()
        codes, level_sizes = self.compute_item_codes()
        return build_semantic_ids(codes, level_sizes, self.resolve_collisions)

    @property
    def generator_uses_tokenizer(self) -> bool:
        """Whether stage 2 reads the trained tokenizer beyond the IDs, so that a bare table
        of IDs (``semantic_ids_file``) cannot replace stage 1."""
        return False

    @property
    def has_semantic_ids(self) -> bool:
        return self.generator is not None

    def set_semantic_ids(self, codes, level_sizes, stats=None) -> None:
        """Install the ID table (row = internal item id) and build the generator for it."""
        # a checkpoint's table arrives as a tensor, possibly on the GPU; a tokenizer's as numpy
        codes = (codes.to(self.device, torch.long) if torch.is_tensor(codes)
                 else torch.as_tensor(np.asarray(codes), dtype=torch.long, device=self.device))
        if codes.shape[0] != self.n_items:
            raise ValueError(
                f"semantic-ID table has {codes.shape[0]} rows but the dataset has "
                f"{self.n_items} item ids (including padding)"
            )
        self.item_codes = codes
        self.level_sizes = torch.as_tensor(list(level_sizes), dtype=torch.long, device=self.device)
        self.semantic_id_stats = dict(stats or {})
        self.trie = SemanticIDTrie(codes).to(self.device)
        self.generator = self.build_generator([int(s) for s in level_sizes]).to(self.device)
        self.generator_loss = self.generator.loss
        if self.compile_mode is not None:
            # length buckets and the last batch change the batch and history sizes: with
            # dynamic=None the first change recompiles once with those sizes symbolic
            # instead of once per shape
            self.generator_loss = torch.compile(self.generator.loss, mode=self.compile_mode,
                                                backend=self.compile_backend, dynamic=None)

    def build_generator(self, level_sizes, **extra) -> SemanticIDGenerator:
        """The stage-2 generator from the config; ``extra`` reaches its constructor
        (e.g. BBQRec's ``attention_cls``)."""
        c = self.config
        return SemanticIDGenerator(
            level_sizes,
            max_history=self.max_seq_length,
            d_model=c["d_model"],
            n_heads=c["n_heads"],
            d_head=c["d_head"],
            d_ff=c["d_ff"],
            n_enc_layers=c["n_encoder_layers"],
            n_dec_layers=c["n_decoder_layers"],
            dropout=c["dropout_prob"],
            init=c["generator_init"] or "normal",
            tie_embeddings=bool(c["tie_embeddings"]),  # Config checks both are bools
            output_bias=bool(c["output_bias"]),
            decoder_start=c["decoder_start"] or "bos",
            first_level_readout=c["first_level_readout"] or "decoder",
            final_dropout=bool(c["final_dropout"]),
            input_norm=bool(c["input_norm"]),
            start_every_level=bool(c["start_every_level"]),
            history_tokens=c["history_tokens"] or "levels",
            first_level_embeddings=c["first_level_embeddings"] or "tokens",
            item_codes=self.item_codes[1:],  # row 0 is RecBole's padding item
            **extra,
        )

    def generator_parameters(self):
        if self.generator is None:
            raise RuntimeError("the generator is built after stage 1 assigns semantic IDs")
        return self.generator.parameters()

    def load_state_dict(self, state_dict, strict: bool = True):
        # The generator's size depends on the semantic IDs, so rebuild it from the saved
        # table before loading its weights (e.g. when RecBole reloads the best checkpoint).
        codes = state_dict.get("item_codes")
        if codes is not None and codes.numel() and not self.has_semantic_ids:
            self.set_semantic_ids(codes, state_dict["level_sizes"].tolist())
        return super().load_state_dict(state_dict, strict=strict)

    # ------------------------------------------------------------------ stage 2
    def generator_attention_kwargs(self, item_seq: torch.Tensor) -> dict:
        """Extra inputs of the encoder self-attention (BBQRec's similarity module)."""
        return {}

    def _length_buckets(self, interaction):
        """Row groups of similar history length, each trimmed to its own longest history
        (:mod:`recbole_bbq.modules.length_buckets`)."""
        item_seq, lengths = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        for rows, width in length_sorted_chunks(lengths, self.length_buckets):
            seq = item_seq[rows, :width]
            yield rows, seq, self.item_codes[seq], seq > 0

    def calculate_loss(self, interaction):
        if self.generator is None:
            raise RuntimeError("calculate_loss is stage 2; stage 1 has not produced semantic IDs")
        targets = self.item_codes[interaction[self.POS_ITEM_ID]]
        total = 0.0
        with self.generator.first_level_shared():
            for rows, seq, codes, mask in self._length_buckets(interaction):
                loss = self.generator_loss(
                    codes, mask, targets[rows], **self.generator_attention_kwargs(seq)
                )
                total = total + loss * len(rows)
        return total / len(targets)

    @torch.no_grad()
    def full_sort_predict(self, interaction):
        n_rows = len(interaction[self.ITEM_SEQ])
        scores = None
        with self.generator.first_level_shared():
            for rows, seq, codes, mask in self._length_buckets(interaction):
                leaf_ids, log_probs = constrained_beam_search(
                    self.generator, codes, mask, self.trie, self.beam_size,
                    level_scores=self.beam_level_scores, **self.generator_attention_kwargs(seq),
                )
                chunk = scores_for_all_items(leaf_ids, log_probs, self.trie, self.n_items)
                if scores is None:
                    scores = chunk.new_full((n_rows, self.n_items), float("-inf"))
                scores[rows] = chunk
        return scores

    def predict(self, interaction):
        raise NotImplementedError(
            f"{type(self).__name__} ranks the full catalogue by beam search; use eval_args "
            f"mode 'full' (sampled-candidate evaluation is not supported)"
        )
