"""Model and trainer lookup: plugin models first, then RecBole's (RecBole-GNN's pattern)."""
from __future__ import annotations

import importlib

from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_bbq import compat
from recbole_bbq.errors import ConfigError


def get_model(model_name: str):
    """The model class named ``model_name``: a plugin model if there is one, else RecBole's."""
    plugin_models = importlib.import_module("recbole_bbq.model")
    model_class = getattr(plugin_models, model_name, None)
    if model_class is not None:
        return model_class
    try:
        with compat.anomaly_mode_kept():  # RecBole's model import turns anomaly mode on
            return recbole_get_model(model_name)
    except (ValueError, ImportError) as exc:
        # RecBole's lookup imports its optional lightgbm/xgboost wrappers for unknown names
        known = ", ".join(sorted(plugin_models.__all__))
        raise ConfigError(
            f"unknown model {model_name!r}: not a recbole_bbq model ({known}) nor a RecBole "
            f"model (RecBole's lookup said: {exc})"
        ) from None


def get_trainer(model_type, model_name: str):
    """The trainer class for ``model_name``.

    Generative plugin models use the two-stage trainer; every other model gets RecBole's
    trainer with :class:`~recbole_bbq.trainer.base.TrainingRunMixin` mixed in (safe checkpoints,
    exact resume, the recipe, the budget and the run record).
    """
    from recbole_bbq.trainer import TrainingRunMixin, TwoStageTrainer

    plugin_models = importlib.import_module("recbole_bbq.model")
    model_class = getattr(plugin_models, model_name, None)
    if model_class is not None and getattr(model_class, "is_generative", False):
        return TwoStageTrainer
    base = recbole_get_trainer(model_type, model_name)
    if issubclass(base, TrainingRunMixin):
        return base
    return type(f"Run{base.__name__}", (TrainingRunMixin, base), {})
