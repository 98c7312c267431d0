"""What every trainer of the plugin adds to RecBole's: safe checkpoints, exact resume, the
training recipe, a wall-time budget and the run record.

:class:`TrainingRunMixin` is mixed into RecBole's own trainers (SASRec & co. through
:func:`recbole_bbq.utils.get_trainer`) and into :class:`~recbole_bbq.trainer.TwoStageTrainer`,
so every model of a side-by-side table is trained, checkpointed and resumed the same way.

* **Checkpoints** hold tensors, numbers, strings, lists and dicts only and load with
  ``weights_only=True`` (:func:`recbole_bbq.compat.load_checkpoint`); they record what they
  belong to (model, dataset, item set), and resuming refuses another run's file.
* **Output paths** come from this run's settings only (``checkpoint_dir``), never from a
  loaded file; run names carry the dataset and a random suffix so concurrent runs started
  in the same second cannot overwrite each other.
* **Exact resume**: optimizer, learning-rate schedule, early-stopping state, random-number
  states (Python, numpy, torch, CUDA, the training loader's shuffling) and the run record.
* **Recipe** (:mod:`recbole_bbq.trainer.schedule`): warm-up then decay, stepped per optimizer
  step, and weight decay on weight matrices only.
* **Data parallel** (RecBole's distributed mode, ``nproc > 1``): the model is wrapped in
  ``DistributedDataParallel`` when training starts (for a generative model: after stage 1,
  so the generator exists), on the CPU too; every rank shares rank 0's run name, only rank
  0 writes files, and the ranks agree on the time budget.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from contextlib import contextmanager
from time import time

import torch

from recbole.utils import get_local_time, set_color

from recbole_bbq import compat
from recbole_bbq.fileio import (atomic_torch_save, config_differences, recorded_value,
                                 remove_stale_temporaries, to_plain)
from recbole_bbq.trainer.checkpoint import capture_rng_state, restore_rng_state
from recbole_bbq.trainer.schedule import (
    build_scheduler,
    decay_parameter_groups,
    end_reason,
)

CHECKPOINT_FORMAT = 2  # 1: pickled RecBole Config (before weights-only loading)


@contextmanager
def autocast_dtype(device_type: str, dtype_name):
    """RecBole's training loop opens ``torch.autocast(device_type, enabled=enable_amp)`` with
    the device's default type (float16 on CUDA); this sets the type it picks up for the
    duration of an epoch -- bfloat16 needs no loss scaling and keeps float32's range."""
    if not dtype_name or device_type not in ("cuda", "cpu"):
        yield
        return
    previous = torch.get_autocast_dtype(device_type)
    torch.set_autocast_dtype(device_type, getattr(torch, dtype_name))
    try:
        yield
    finally:
        torch.set_autocast_dtype(device_type, previous)


def format_eta(elapsed_s: float, timed_epochs: int, epoch: int, total: int) -> str:
    """``epoch 4/30, ETA 12m30s``: ``epoch`` of ``total`` done, the rest estimated from the
    mean wall time of the ``timed_epochs`` this process ran (epochs before a resume are done
    but not timed). An upper bound: early stopping may end the stage sooner."""
    left = max(total - epoch, 0)
    if timed_epochs <= 0 or not left:
        return f"epoch {epoch}/{total}"
    seconds = int(round(elapsed_s / timed_epochs * left))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    eta = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
    return f"epoch {epoch}/{total}, ETA {eta}"


class BudgetExhausted(Exception):
    """Raised before an epoch once ``time_budget_minutes`` of this run's wall time is spent."""


def run_identity(config, model) -> dict:
    """What a checkpoint belongs to: model, dataset and a hash of the item set (the item
    tokens in internal-id order where the model keeps them, else the item count)."""
    tokens = getattr(model, "item_tokens", None)
    items = "\n".join(map(str, tokens)) if tokens is not None else f"n_items={model.n_items}"
    return {
        "model": str(config["model"]),
        "dataset": str(config["dataset"]),
        "n_items": int(getattr(model, "n_items", 0) or 0),
        "items_sha256": hashlib.sha256(items.encode()).hexdigest(),
    }


def _settings_changed(saved: dict, mine: dict, differ, newer, limit=None) -> str:
    """``"key: <checkpoint's value> in the checkpoint, <value> now, ..."`` for the keys
    :func:`config_differences` found (``differ``, ``newer``), at most ``limit`` of them."""
    parts = ([f"{k}: {recorded_value(saved, k)!r} in the checkpoint"
              f"{' (made before the key existed)' if k in newer else ''}, {mine.get(k)!r} now"
              for k in differ]
             + [f"{k}: not in the checkpoint (made before the key existed), {mine[k]!r} now"
                for k in newer if k not in differ])
    return ", ".join(parts[:limit])


class TrainingRunMixin:
    """See the module docstring. Mix in before a RecBole ``Trainer`` class."""

    def __init__(self, config, model):
        self.distributed = not config["single_spec"]
        # RecBole wraps the model in DDP in its constructor, before a generator exists and
        # with device_ids a CPU module refuses; _wrap_distributed() does it when fit() starts
        config["single_spec"] = True
        compat.make_run_directories(config)
        try:
            super().__init__(config, model)
        finally:
            config["single_spec"] = not self.distributed
        self.distributed_model = None
        self.is_main_process = not self.distributed or config["local_rank"] == 0
        self.run_name = self._shared(
            f"{config['model']}-{config['dataset']}-{get_local_time()}-{secrets.token_hex(3)}"
        )
        self.saved_model_file = os.path.join(self.checkpoint_dir, f"{self.run_name}.pth")
        removed = remove_stale_temporaries(self.checkpoint_dir) if self.is_main_process else 0
        if removed:
            self.logger.info(f"removed {removed} stale temporary file(s) of killed runs from "
                             f"{self.checkpoint_dir}")
        self.valid_history = []
        self.resumed_from = None
        self.stopped_by_budget = False
        self.end_reason = None
        self.scheduler = None
        self.schedule_horizon = None
        self.optimizer_steps = 0
        self._fit_started = None
        self._fit_time_before = 0.0
        self._current_epoch = None
        self._step_hook = None
        self._pending_scheduler_state = None
        self._pending_rng_state = None
        self._data_generator = None
        self._eta_origin = None  # (wall time, epoch) of this process's first epoch

    # ------------------------------------------------------------------ data parallel
    def _shared(self, value):
        """Rank 0's ``value`` on every rank (the value itself in a single process)."""
        if not self.distributed:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def _barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def _wrap_distributed(self) -> None:
        """DDP over the parameters that train now (RecBole's per-step reduce hook and
        zero-weighted sync loss then average the gradients of the global batch)."""
        if not self.distributed or self.distributed_model is not None:
            return
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.config["local_rank"]] if self.device.type == "cuda" else None
        self.distributed_model = DistributedDataParallel(
            self.model, device_ids=device_ids, broadcast_buffers=False)

    # ------------------------------------------------------------------ recipe
    def _build_optimizer(self, **kwargs):
        """RecBole's optimizer; ``modules=[...]`` (default: the model) are split into decayed
        and non-decayed groups by ``weight_decay_scope`` when no ``params`` are given."""
        modules = kwargs.pop("modules", None)
        if "params" not in kwargs:
            weight_decay = kwargs.get("weight_decay", self.weight_decay) or 0.0
            kwargs["params"] = decay_parameter_groups(
                modules or [self.model], weight_decay, self.config["weight_decay_scope"] or "all"
            )
        return super()._build_optimizer(**kwargs)

    def _after_optimizer_step(self, optimizer, args, kwargs):
        self.optimizer_steps += 1
        if self.scheduler is not None:
            self.scheduler.step()

    def _install_schedule(self, train_data) -> None:
        """The learning-rate schedule on the current optimizer, continued from a resumed
        checkpoint's state; every optimizer step then advances it."""
        steps_per_epoch = len(train_data)
        self.scheduler, self.schedule_horizon = build_scheduler(
            self.optimizer, self.config, steps_per_epoch, self.epochs)
        if self.scheduler is not None and self._pending_scheduler_state:
            self.scheduler.load_state_dict(self._pending_scheduler_state)
            # the constructor already set the rates of step 0; put back the saved ones
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                group["lr"] = lr
        self._pending_scheduler_state = None
        if self._step_hook is not None:
            self._step_hook.remove()
        self._step_hook = self.optimizer.register_step_post_hook(self._after_optimizer_step)

    # ------------------------------------------------------------------ budget and curve
    def over_budget(self) -> bool:
        minutes = self.config["time_budget_minutes"]
        started = self._fit_started
        over = bool(minutes) and started is not None and time() - started > 60 * float(minutes)
        if self.distributed:  # every rank stops at the same epoch, or the others would hang
            flag = torch.tensor([float(over)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            over = bool(flag.item())
        return over

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        # at least one epoch always runs, so there is a checkpoint to test
        if epoch_idx > self.start_epoch and self.over_budget():
            raise BudgetExhausted(epoch_idx)
        self._current_epoch = epoch_idx
        if self._eta_origin is None:
            self._eta_origin = (time(), epoch_idx)
        with autocast_dtype(self.device.type, self.config["amp_dtype"] if self.enable_amp else None):
            return super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)

    def _full_sort_batch_eval(self, batched_data):
        dtype = self.config["eval_amp_dtype"]
        if not dtype:
            return super()._full_sort_batch_eval(batched_data)
        with torch.autocast(self.device.type, dtype=getattr(torch, dtype)):
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        return interaction, scores.float(), positive_u, positive_i

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        text = super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        if self._eta_origin is None:
            return text
        started, first_epoch = self._eta_origin
        progress = format_eta(time() - started, epoch_idx + 1 - first_epoch, epoch_idx + 1, self.epochs)
        return f"{text} ({progress})"

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        self.valid_history.append(
            {"epoch": self._current_epoch, "valid_score": float(score),
             "lr": float(self.optimizer.param_groups[0]["lr"]),
             **{k: float(v) for k, v in result.items()}}
        )
        return score, result

    # ------------------------------------------------------------------ run record
    def best_epoch(self):
        """The epoch whose checkpoint was kept as best: RecBole's early stopping saves on a
        tie with the best score so far, so of tied epochs it is the last."""
        scored = [h for h in self.valid_history if h.get("epoch") is not None]
        if not scored:
            return None
        pick = max if self.valid_metric_bigger else min
        # max/min return the first of equal keys: over the reversed history, the last epoch
        return pick(reversed(scored), key=lambda h: h["valid_score"])["epoch"]

    def run_record(self) -> dict:
        """What a results file reports about the run so far; saved in every checkpoint so a
        resumed run reports the whole run, not only the epochs after the resume."""
        return {
            "valid_history": list(self.valid_history),
            "train_loss_dict": to_plain(self.train_loss_dict),
            "fit_time_s": self.fit_time_s(),
            "optimizer_steps": self.optimizer_steps,
            "best_epoch": self.best_epoch(),
            "end_reason": self.end_reason,
            "schedule_horizon_steps": self.schedule_horizon,
            "stage_times": {"train": self.fit_time_s()},
            "resumed_from": self.resumed_from,
            "stopped_by_budget": self.stopped_by_budget,
        }

    def restore_run_record(self, record) -> None:
        if not record:
            return
        self.valid_history = list(record.get("valid_history", []))
        self.train_loss_dict.update({int(k): v for k, v in record.get("train_loss_dict", {}).items()})
        self._fit_time_before = float(record.get("fit_time_s", 0.0))
        self.optimizer_steps = int(record.get("optimizer_steps", 0))

    def fit_time_s(self) -> float:
        """Wall time in ``fit``, including the time spent before a resume."""
        started = self._fit_started
        return self._fit_time_before + (time() - started if started else 0.0)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, epoch) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "identity": run_identity(self.config, self.model),
            "config": to_plain(self.config.final_config_dict),
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": to_plain(self.best_valid_result),
            "state_dict": self.model.state_dict(),
            "other_parameter": to_plain(self.model.other_parameter()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": capture_rng_state(self._data_generator),
            "run_record": to_plain(self.run_record()),
        }

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.is_main_process:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        atomic_torch_save(self._checkpoint_state(epoch), saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def _check_identity(self, checkpoint: dict, path: str) -> None:
        saved = checkpoint.get("identity")
        if not isinstance(saved, dict):
            raise compat.CheckpointError(
                f"{path} records no model / dataset identity (written by an older version); "
                f"it cannot be resumed safely"
            )
        mine = run_identity(self.config, self.model)
        differ = [k for k in ("model", "dataset", "n_items", "items_sha256") if saved.get(k) != mine[k]]
        if differ:
            what = ", ".join(f"{k} {saved.get(k)!r} vs {mine[k]!r}" for k in differ if k != "items_sha256")
            if "items_sha256" in differ and not what:
                what = "the same item count but another item set"
            raise compat.CheckpointError(
                f"{path} belongs to another run: checkpoint {saved.get('model')} on "
                f"{saved.get('dataset')}, this run {mine['model']} on {mine['dataset']} ({what})"
            )

    # settings that change what the weights compute without changing their shapes: a resume
    # under other values would load silently and continue another model
    SHAPELESS_MODEL_KEYS = ("decoder_start", "first_level_readout", "start_every_level",
                            "history_tokens", "first_level_embeddings")

    def _check_same_function(self, checkpoint: dict, path: str) -> None:
        saved = checkpoint.get("config") or {}
        mine = to_plain(self.config.final_config_dict)
        differ, newer = config_differences(
            saved, mine, ignore=lambda k: k not in self.SHAPELESS_MODEL_KEYS)
        if differ:  # only the keys that differ: a key merely added since is the same model
            what = _settings_changed(saved, mine, differ, [k for k in newer if k in differ])
            raise compat.CheckpointError(
                f"{path} was trained as another model ({what}); resume it with the "
                f"checkpoint's settings")

    def resume_checkpoint(self, resume_file):
        """Continue an interrupted run from its ``-latest`` (or best) checkpoint.

        Files are written under this run's own name in this run's ``checkpoint_dir``; the
        best weights so far are taken from the best file beside ``resume_file`` (same name
        without ``-latest``) when it exists, else from ``resume_file`` itself.
        """
        resume_file = str(resume_file)
        checkpoint = compat.load_checkpoint(resume_file, map_location=self.device,
                                            what="resume_checkpoint")
        self._check_identity(checkpoint, resume_file)
        self._check_same_function(checkpoint, resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result")
        self._load_resumed_weights(checkpoint, resume_file)
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self._rebuild_optimizer_for_resume()
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self._pending_scheduler_state = checkpoint.get("scheduler")
        self._pending_rng_state = checkpoint.get("rng")
        self.restore_run_record(checkpoint.get("run_record"))
        self._carry_best_model(resume_file, checkpoint)
        self.resumed_from = resume_file
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def _load_resumed_weights(self, checkpoint: dict, path: str) -> None:
        """The checkpoint's weights into the model; if they do not fit (another size or
        ``tie_embeddings`` on the command line than the interrupted run had), an error that
        names the settings that differ instead of torch's list of mismatched tensors."""
        try:
            self.model.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as exc:
            saved = checkpoint.get("config") or {}
            mine = to_plain(self.config.final_config_dict)
            differ, newer = config_differences(
                saved, mine, ignore=lambda k: k.endswith(("_checkpoint", "_dir", "_path", "_file")))
            hint = _settings_changed(saved, mine, differ, newer, limit=8) or "no setting differs"
            raise compat.CheckpointError(
                f"{path}: its weights do not fit the model this command builds ({hint}); "
                f"resume with the interrupted run's settings") from exc

    def _carry_best_model(self, resume_file: str, checkpoint: dict) -> None:
        if not self.is_main_process:
            return
        stem, ext = os.path.splitext(resume_file)
        best_file = stem[: -len("-latest")] + ext if stem.endswith("-latest") else resume_file
        best = checkpoint
        if best_file != resume_file and os.path.isfile(best_file):
            best = compat.load_checkpoint(best_file, map_location=self.device, what="best model")
            self._check_identity(best, best_file)
        elif best_file != resume_file:
            self.logger.warning(
                f"best model {best_file} not found beside {resume_file}: unless a later epoch "
                f"improves, the test uses the weights of the resumed epoch"
            )
        atomic_torch_save(best, self.saved_model_file)

    def _rebuild_optimizer_for_resume(self):
        """Hook: the optimiser must cover the parameters the checkpoint's optimiser covered."""

    @property
    def latest_model_file(self) -> str:
        stem, ext = os.path.splitext(self.saved_model_file)
        return stem + "-latest" + ext

    # ------------------------------------------------------------------ fit / evaluate
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        """RecBole's fit with the recipe, a ``-latest`` checkpoint after every validated
        epoch (early-stopping state, schedule and random states included) and the reason
        training ended (``end_reason``)."""

        def save_latest(epoch_idx, valid_score):
            if saved:
                self._save_checkpoint(epoch_idx, verbose=False, saved_model_file=self.latest_model_file)
            if callback_fn:
                callback_fn(epoch_idx, valid_score)

        if self._fit_started is None:
            self._fit_started = time()
        self._data_generator = getattr(train_data, "generator", None)
        restore_rng_state(self._pending_rng_state, self._data_generator)
        self._pending_rng_state = None
        self._install_schedule(train_data)
        self._wrap_distributed()
        self.stopped_by_budget = False
        try:
            result = super().fit(train_data, valid_data, verbose, saved, show_progress, save_latest)
        except BudgetExhausted as stop:
            self.stopped_by_budget = True
            self.logger.info(
                set_color("time budget", "yellow")
                + f": {self.config['time_budget_minutes']} min spent, stopped before epoch "
                f"{stop.args[0]}; the best validated checkpoint is kept"
            )
            result = self.best_valid_score, self.best_valid_result
        self.end_reason = end_reason(
            budget=self.stopped_by_budget, last_epoch=self._current_epoch, epochs=self.epochs,
            decays=self.scheduler is not None and (self.config["lr_scheduler"] or "constant") != "constant",
            steps_done=self.optimizer_steps, horizon=self.schedule_horizon,
        )
        return result

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            self._barrier()  # rank 0 may still be writing the best checkpoint
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = compat.load_checkpoint(checkpoint_file, map_location=self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
