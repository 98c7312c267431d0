"""Every compatibility fix that lets RecBole 1.2.1 run on today's stack, in one place.

RecBole 1.2.1 (Feb 2025) predates numpy 2, torch 2.6 and Python 3.12. Rather than ask users
to downgrade, the plugin repairs exactly what breaks, and nothing else:

1. ``ray<=2.6.3`` pin: RecBole is installed with ``pip install --no-deps recbole==1.2.1``
   (see setup.py), and this plugin never imports ``recbole.quick_start`` -- the only module
   that imports ray. :func:`check_recbole` verifies the installed version.
2. numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``; RecBole's
   ``Config.compatibility_settings`` reads them to re-create ``np.float``, ``np.int`` & co.,
   which its data and evaluator modules still use, so it raises on numpy 2.
   :func:`patch_numpy` sets both sets of aliases itself (``np.bool8`` too, for third-party
   RecBole models), so RecBole's metrics work even before any Config exists.
3. ``torch.utils.tensorboard`` needs the ``tensorboard`` package, which RecBole's trainer
   imports unconditionally. When it is absent (it is an optional extra here),
   :func:`patch_tensorboard` installs a no-op ``SummaryWriter`` and says so once.
4. RecBole's trainer pickles its ``Config`` into checkpoints, which torch >= 2.6's
   ``torch.load(weights_only=True)`` refuses, and loading with ``weights_only=False`` runs
   whatever code a crafted file carries. The plugin's trainers write checkpoints that hold
   only tensors, numbers, strings, lists and dicts (the config as a plain mapping), and
   :func:`load_checkpoint` loads every file -- resumed runs, best models, tokenizers,
   LETTER's collaborative embeddings -- with ``weights_only=True``, turning a refused or
   damaged file into a :class:`CheckpointError` that names it.

5. Three deprecation warnings that RecBole's own code triggers on every run and that say
   nothing actionable to a user: pandas' chained ``fillna(..., inplace=True)`` in
   ``recbole.data.dataset.dataset`` (it still works on pandas 2, which setup.py pins because
   pandas 3 breaks it) and torch's ``torch.cuda.amp.GradScaler(args...)`` in RecBole's
   trainer; and numpy 2's ``__array_wrap__`` DeprecationWarning, raised when RecBole's
   ``Interaction.sort`` hands torch tensors to ``np.lexsort``. :func:`quiet_recbole_warnings`
   filters exactly those three, by message, category and module.

6. Importing RecBole's sequential models runs ``torch.autograd.set_detect_anomaly(True)``
   (module level of ``recbole/model/sequential_recommender/sine.py``), so looking up any of
   them (SASRec, GRU4Rec, ...) turned on autograd's anomaly detection for the whole process,
   and every later backward pass ran in it: the "generator 2.1x slower after a SASRec in the
   same process" of docs/RESULTS.md. :func:`anomaly_mode_kept` wraps every place the plugin
   imports those models and puts the caller's setting back.

7. RecBole creates ``./log``, ``./log/<model>`` (``init_logger``) and ``checkpoint_dir``
   (``Trainer.__init__``) by check-then-create (``ensure_dir``), so when two runs start in the
   same second one of them dies with ``FileExistsError``. :func:`make_run_directories` creates
   them race-free first: every entry point starts RecBole's logger through
   :func:`start_logging`, and every trainer calls it before RecBole's constructor.

:func:`apply` runs 2, 3 and 5 and is called on ``import recbole_bbq``, before RecBole is imported.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import types

RECBOLE_VERSION = "1.2.1"
_INSTALL_HINT = f'pip install --no-deps "recbole=={RECBOLE_VERSION}"'

_NUMPY_ALIASES = {
    # removed in numpy 2, read by RecBole's Config.compatibility_settings
    "float_": "float64",
    "complex_": "complex128",
    "unicode_": "str_",
    "bool8": "bool_",
    # removed in numpy 1.24, used by RecBole's data and evaluator code
    "float": "float64",
    "int": "int_",
    "complex": "complex128",
    "object": "object_",
    "str": "str_",
    "unicode": "str_",
}


def patch_numpy() -> list[str]:
    """Restore the numpy < 2 aliases RecBole reads. Returns the names that were added."""
    import numpy as np

    added = []
    for alias, target in _NUMPY_ALIASES.items():
        if alias not in np.__dict__:  # never replace an alias numpy still defines
            setattr(np, alias, getattr(np, target))
            added.append(alias)
    return added


class _NullSummaryWriter:
    """Stands in for ``torch.utils.tensorboard.SummaryWriter`` when tensorboard is absent."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def patch_tensorboard() -> bool:
    """Install a no-op ``torch.utils.tensorboard`` if tensorboard is missing. True if patched."""
    if "torch.utils.tensorboard" in sys.modules:
        return False
    if importlib.util.find_spec("tensorboard") is not None:
        return False
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = _NullSummaryWriter
    module.__doc__ = "recbole_bbq stand-in: tensorboard is not installed, so nothing is written."
    sys.modules["torch.utils.tensorboard"] = module
    return True


def check_recbole() -> str:
    """Return the installed RecBole version, or raise with the install command."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - python < 3.8
        raise
    try:
        found = version("recbole")
    except PackageNotFoundError:
        raise ImportError(
            f"recbole_bbq needs RecBole {RECBOLE_VERSION}, which is not installed. "
            f"Install it without its ray pin: {_INSTALL_HINT}"
        ) from None
    if found != RECBOLE_VERSION:
        raise ImportError(
            f"recbole_bbq is built for RecBole {RECBOLE_VERSION} but found {found}. "
            f"Install the supported version: {_INSTALL_HINT}"
        )
    return found


class CheckpointError(ValueError):
    """A checkpoint or tokenizer file that is missing, damaged or not weights-only."""


def load_checkpoint(path, map_location=None, what: str = "checkpoint"):
    """``torch.load(weights_only=True)`` of a file this package wrote.

    Nothing in the file is executed: a pickle that calls any function other than torch's
    tensor rebuilders is refused. Every failure -- missing file, pickled objects (a RecBole
    checkpoint from RecBole's own trainer, or a crafted payload), a truncated or garbage
    file -- raises :class:`CheckpointError` naming ``path``.
    """
    import os
    import pickle
    import re

    import torch

    path = str(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        detail = f"it references {found.group(1)}" if found else "it is not weights-only"
        raise CheckpointError(
            f"{what} {path} holds pickled Python objects, which are not loaded because "
            f"loading them could run code ({detail}). recbole_bbq writes only "
            f"tensors, numbers, strings, lists and dicts; retrain, or re-save the file from "
            f"a source you trust"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{what} {path} could not be read as a torch checkpoint (truncated, damaged or "
            f"not a checkpoint): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None


# (message regex, category, module regex) of the known-harmless warnings (item 5); the module is
# where the warning is raised, which for numpy's is numpy itself, called by RecBole's
# Interaction.sort (np.lexsort on torch tensors)
HARMLESS_RECBOLE_WARNINGS = (
    (r"A value is trying to be set on a copy", "FutureWarning", r"recbole\.data\.dataset\.dataset"),
    (r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated", "FutureWarning",
     r"recbole\.trainer\.trainer"),
    (r"__array_wrap__ must accept context and return_scalar", "DeprecationWarning",
     r"numpy\._core\.fromnumeric"),
)


def quiet_recbole_warnings() -> None:
    """Hide the known-harmless deprecation warnings RecBole 1.2.1 raises (item 5)."""
    import builtins
    import warnings

    for message, category, module in HARMLESS_RECBOLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=getattr(builtins, category),
                                module=module)


def make_run_directories(config) -> None:
    """Create the directories RecBole would create racily for ``config``'s run (fix 7)."""
    import os

    os.makedirs(os.path.join("log", str(config["model"])), exist_ok=True)
    if config["checkpoint_dir"]:
        os.makedirs(config["checkpoint_dir"], exist_ok=True)


def start_logging(config) -> None:
    """RecBole's ``init_logger`` after :func:`make_run_directories`, so that it never races."""
    from recbole.utils import init_logger

    make_run_directories(config)
    init_logger(config)


_applied = False


@contextlib.contextmanager
def anomaly_mode_kept():
    """Keep autograd's anomaly-detection setting across a block that imports RecBole's
    sequential models (fix 6): whatever the block's imports switch on is switched back."""
    import torch

    enabled, check_nan = torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()
    try:
        yield
    finally:
        torch.autograd.set_detect_anomaly(enabled, check_nan)


def apply() -> None:
    """Apply the import-time fixes once, before RecBole is imported."""
    global _applied
    if _applied:
        return
    check_recbole()
    patch_numpy()
    quiet_recbole_warnings()
    if patch_tensorboard():
        logging.getLogger(__name__).debug(
            "tensorboard not installed: RecBole's tensorboard logging is disabled "
            "(pip install recbole_bbq[tensorboard] to enable it)"
        )
    _applied = True
