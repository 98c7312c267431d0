"""The training recipe shared by every model the plugin trains: learning-rate warm-up then
decay, weight decay on weight matrices only, and what ended a run.

Configuration keys (defaults in ``properties/overall.yaml`` keep RecBole's constant learning
rate; ``properties/model/GenerativeRecommender.yaml`` turns the recipe on for the generative
family):

``lr_scheduler``       ``constant`` | ``cosine`` | ``inverse_sqrt`` | ``linear``
``warmup_steps``       optimizer steps of linear warm-up from ``lr / warmup_steps`` to ``lr``
``schedule_horizon``   steps the decay runs over: ``~`` = ``epochs`` x batches per epoch, an
                       integer = that many steps, ``"<n>e"`` (e.g. ``30e``) = ``n`` epochs
``min_lr_ratio``       the floor of ``cosine`` and ``linear`` as a fraction of ``lr``
``weight_decay_scope`` ``all`` (RecBole's behaviour); ``matrices``: only the weights of
                       linear / attention layers decay, biases, norms and embedding tables don't;
                       ``hidden``: as ``matrices``, and output layers onto a vocabulary (modules
                       with ``vocabulary_table = True``) don't decay either

The schedule is a :class:`torch.optim.lr_scheduler.LambdaLR` stepped after every optimizer
step (an optimizer step hook, so RecBole's own training loop needs no change); its state is
saved in every checkpoint and restored by ``resume_checkpoint``.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Iterable, List, Optional, Tuple

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("constant", "cosine", "inverse_sqrt", "linear")
WEIGHT_DECAY_SCOPES = ("all", "matrices", "hidden")


def lr_multiplier(schedule: str, warmup_steps: int, horizon: int,
                  min_lr_ratio: float = 0.0) -> Callable[[int], float]:
    """``f(step)``: the learning rate of optimizer step ``step`` (0-based) over the base one.

    Linear warm-up over ``warmup_steps`` (step 0 gets ``1 / warmup_steps``), then
    ``constant`` (1), ``cosine`` (half a cosine from 1 to ``min_lr_ratio`` at ``horizon``),
    ``linear`` (straight line to ``min_lr_ratio`` at ``horizon``) or ``inverse_sqrt``
    (``sqrt(warmup / step)``, the Transformer schedule). Past the horizon the decaying
    schedules stay at their floor.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"lr_scheduler must be one of {list(SCHEDULES)}, got {schedule!r}")
    warmup = max(0, int(warmup_steps))
    horizon = max(int(horizon), warmup + 1)
    floor = float(min_lr_ratio)
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        if schedule == "inverse_sqrt":
            return math.sqrt(max(warmup, 1) / (step + 1))
        progress = min(1.0, (step - warmup) / max(1, horizon - warmup))
        if schedule == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return floor + (1.0 - floor) * (1.0 - progress)

    return f


def horizon_steps(value, epochs: int, steps_per_epoch: int) -> int:
    """Optimizer steps the schedule decays over (see the module docstring for ``value``)."""
    if value is None or value == "":
        return max(1, int(epochs) * int(steps_per_epoch))
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*e(pochs?)?\s*", value)
        if not match:
            raise ValueError(
                f"schedule_horizon must be a number of steps or '<n>e' epochs, got {value!r}"
            )
        return max(1, int(match.group(1)) * int(steps_per_epoch))
    if int(value) < 1:
        raise ValueError(f"schedule_horizon must be >= 1 step, got {value}")
    return int(value)


def decay_parameter_groups(modules: Iterable[nn.Module], weight_decay: float,
                           scope: str = "matrices") -> List[dict]:
    """Optimizer parameter groups: with ``scope='matrices'`` only weight matrices of layers
    other than embeddings decay (2-d+ parameters not owned by an ``nn.Embedding``);
    biases, norm gains, embedding tables and codebooks keep ``weight_decay = 0``, so decay
    regularises the transforms without shrinking rarely-seen rows towards zero. With
    ``scope='hidden'`` the same holds for output layers whose weight is a row per token
    (``vocabulary_table = True`` on the module), which a tied output would share with the
    embedding table.
    """
    if scope not in WEIGHT_DECAY_SCOPES:
        raise ValueError(
            f"weight_decay_scope must be one of {list(WEIGHT_DECAY_SCOPES)}, got {scope!r}"
        )
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for sub in module.modules():
            for name, param in sub.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:
                    continue
                seen.add(id(param))
                is_table = isinstance(sub, nn.Embedding) or (
                    scope == "hidden" and getattr(sub, "vocabulary_table", False))
                is_matrix = param.ndim >= 2 and not is_table
                (decay if scope == "all" or is_matrix else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": float(weight_decay or 0.0)}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_scheduler(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int,
                    epochs: int) -> Tuple[Optional[LambdaLR], Optional[int]]:
    """The configured schedule on ``optimizer`` and the steps it decays over (``None, None``
    for a plain constant rate)."""
    schedule = config["lr_scheduler"] or "constant"
    warmup = int(config["warmup_steps"] or 0)
    if schedule == "constant" and warmup == 0:
        return None, None
    horizon = horizon_steps(config["schedule_horizon"], epochs, steps_per_epoch)
    return LambdaLR(optimizer, lr_multiplier(schedule, warmup, horizon,
                                             float(config["min_lr_ratio"] or 0.0))), horizon


def end_reason(*, budget: bool, last_epoch: Optional[int], epochs: int, decays: bool,
               steps_done: int, horizon: Optional[int]) -> str:
    """Why training ended: ``budget`` (time budget), ``early_stopping`` (before the epoch
    cap), ``schedule_end`` (a decaying schedule reached its horizon) or ``epoch_cap``."""
    if budget:
        return "budget"
    if last_epoch is not None and last_epoch + 1 < epochs:
        return "early_stopping"
    if decays and horizon is not None and steps_done >= horizon:
        return "schedule_end"
    return "epoch_cap"
