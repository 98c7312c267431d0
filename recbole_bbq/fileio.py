"""Crash-safe writes: write a temporary file in the target folder, fsync, then rename.

A crash or a full disk mid-write leaves the previous file (checkpoint, results, features)
intact instead of a truncated one. Kept free of RecBole/torch imports so ``dataset_prep``
can use it cheaply.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def to_plain(value):
    """``value`` as plain Python (dicts with str keys, lists, str, int, float, bool, None):
    what a JSON record or a weights-only checkpoint may hold. numpy / torch scalars and
    arrays become numbers and lists; any other object becomes its ``str``."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if type(value) in (str, int, float, bool) or value is None:  # not numpy's float64 & co.
        return value
    if hasattr(value, "tolist") and hasattr(value, "ndim"):  # numpy / torch values
        return value.item() if value.ndim == 0 else to_plain(value.tolist())
    return str(value)


# What a config key added after runs were recorded stands for in a record or checkpoint made
# before it existed: the behaviour the code had then. Such a run is compared on these keys like
# on any other (a run that trained untied must not pass for a tied one). Keys not listed here
# are just reported as added since: most only change speed or placement (compile_backend,
# keep_freed_memory, ip, port); amp_dtype's earlier behaviour depended on the device (RecBole's
# autocast type) and it matters only under enable_amp, off in every committed record predating it.
VALUES_BEFORE_KEYS_EXISTED = {
    "tie_embeddings": False,      # each level had its own output layer
    "output_bias": True,          # ... with a bias per token
    "generator_init": "normal",   # N(0, 0.02) everywhere
    "rq_level_reduction": "sum",  # the levels' quantization losses summed
    "semantic_ids_file": None,    # IDs came from stage 1
    "compile_generator": None,    # eager stage 2
    "eval_amp_dtype": None,       # evaluation in float32
    "nproc": 1,                   # one process
    "decoder_start": "bos",       # the decoder started from the learned BOS alone
    "first_level_readout": "decoder",  # the first level scored from the decoder layers' output
    "final_dropout": True,        # the encoder's and decoder's normed outputs dropped (T5)
    "input_norm": False,          # the encoder's input embeddings summed, not normalised
    "start_every_level": False,   # the start added to the decoder's first position only
    "history_tokens": "levels",   # every level token of a history item its own encoder position
    "first_level_embeddings": "tokens",  # each level-1 token scored against its own embedding
    "latent_norm": "none",        # BBQRec's tokenizer latents left un-normalised
    "loss_reduction": "mean",     # ... its squared errors averaged over dimensions
    "mim_gradient": "both",       # ... and L_MIM moving z^m as well as zbar^m
    "codebook_init": "pooled",    # ... and one k-means over every signal's latents
}


def config_differences(recorded: dict, current: dict, ignore=lambda key: False):
    """``(differ, newer)``: the keys whose values differ between a run's ``recorded`` config
    and the ``current`` one (both plain values, :func:`to_plain`, as a record or checkpoint
    holds them), and the keys only ``current`` has (added to the code after the run). A key
    the record lacks counts as its :data:`VALUES_BEFORE_KEYS_EXISTED` value where it has one
    (then it is in ``differ`` if the current value is another), and is listed in ``newer``
    either way. Keys for which ``ignore(key)`` is true are left out of both."""
    newer = sorted(k for k in set(current) - set(recorded) if not ignore(k))
    differ = sorted(k for k in set(current) | set(recorded)
                    if not ignore(k) and (k not in newer or k in VALUES_BEFORE_KEYS_EXISTED)
                    and current.get(k) != recorded_value(recorded, k))
    return differ, newer


def recorded_value(recorded: dict, key: str):
    """``key``'s value in a ``recorded`` config, or the value it stands for where the record
    predates the key (:data:`VALUES_BEFORE_KEYS_EXISTED`); ``None`` for another missing key."""
    return recorded[key] if key in recorded else VALUES_BEFORE_KEYS_EXISTED.get(key)


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes (hex): what a run record keeps to identify an input
    file that stays outside the repository, such as a semantic-ID table."""
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def atomic_write(path, write_fn, mode: str = "wb") -> Path:
    """Call ``write_fn(handle)`` on a temporary file, then atomically move it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other users
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            write_fn(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temporaries(folder, older_than_s: float = 3600.0) -> int:
    """Delete the temporaries :func:`atomic_write` leaves when a process is killed mid-write
    (``.<name>.<random>.tmp``) that are older than ``older_than_s`` -- a live write is never
    that old, so a concurrent run's temporaries are kept. Returns how many were removed."""
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed, now = 0, time.time()
    for tmp in folder.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:  # gone meanwhile, or not ours to delete
            continue
    return removed


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj, path) -> Path:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))
