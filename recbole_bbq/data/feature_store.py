"""On-disk format of the dense item features that ``dataset_prep`` writes and models read.

A prepared dataset ``<data_path>/<name>/`` holds, next to RecBole's atomic files
``<name>.inter`` and ``<name>.item``:

- ``<name>.feat_<modality>.npz`` per content modality (``text``, ``category``, ``image``, ...)
  with three arrays: ``item_id`` (unicode item tokens, as in the ``.inter`` file),
  ``feature`` (float32 ``[n, dim]``) and ``present`` (bool ``[n]``; False marks an item that
  had no source data and got a zero vector under the ``zero`` missing-feature policy).
- ``<name>.features.json``: how the features were made -- per modality the encoder, its
  dimension, the source files and fields, item counts and the missing-feature policy -- plus
  interaction counts and any k-core filtering.

Rows are keyed by item token, never by position, so the files stay valid whatever internal
ids RecBole assigns. Writes are atomic (temporary file + rename).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recbole_bbq.fileio import atomic_write

METADATA_SUFFIX = ".features.json"
FORMAT_VERSION = 1


class FeatureFileError(ValueError):
    """A feature file is missing, malformed or does not match the dataset."""


def feature_path(dataset_dir, name: str, modality: str) -> Path:
    return Path(dataset_dir) / f"{name}.feat_{modality}.npz"


def metadata_path(dataset_dir, name: str) -> Path:
    return Path(dataset_dir) / f"{name}{METADATA_SUFFIX}"


def check_feature_rows(path, item_ids, features) -> None:
    """The rules every feature file obeys, checked on write and on read: ``[n, dim]`` with
    ``dim >= 1`` and one row per item id, unique item ids, finite values. The error names
    the file and the first offending items."""
    item_ids = np.asarray(item_ids)
    if features.ndim != 2 or features.shape[0] != len(item_ids):
        raise FeatureFileError(
            f"{path}: features must be [n_items, dim] with one row per item id, "
            f"got shape {features.shape} for {len(item_ids)} ids"
        )
    if features.shape[1] < 1:
        raise FeatureFileError(f"{path}: features have width 0 (dim must be >= 1)")
    tokens, counts = np.unique(item_ids, return_counts=True)
    if (counts > 1).any():
        raise FeatureFileError(
            f"{path}: duplicate item ids in feature rows: {tokens[counts > 1][:5].tolist()}"
        )
    finite = np.isfinite(features).all(axis=1)
    if not finite.all():
        bad = item_ids[~finite][:5].tolist()
        raise FeatureFileError(
            f"{path}: non-finite (NaN or inf) feature values for {int((~finite).sum())} "
            f"items, first {bad}"
        )


def write_feature_file(path, item_ids, features, present=None) -> None:
    """Write one modality's features. ``item_ids`` are tokens aligned with ``features`` rows."""
    item_ids = np.asarray([str(i) for i in item_ids])
    features = np.asarray(features, dtype=np.float32)
    check_feature_rows(path, item_ids, features)
    present = np.ones(len(item_ids), bool) if present is None else np.asarray(present, bool)
    atomic_write(
        Path(path),
        lambda f: np.savez(f, item_id=item_ids, feature=features, present=present),
    )


def read_feature_file(path):
    """Return ``(item_ids: list[str], features: float32 [n, d], present: bool [n])``."""
    path = Path(path)
    if not path.exists():
        raise FeatureFileError(
            f"feature file {path} not found; prepare the dataset with "
            f"`python -m dataset_prep ...` or remove the modality from `modalities`"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            item_ids = [str(i) for i in data["item_id"]]
            features = np.asarray(data["feature"], dtype=np.float32)
            present = np.asarray(data["present"], dtype=bool)
    except (KeyError, ValueError, OSError) as exc:
        raise FeatureFileError(f"{path}: not a recbole_bbq feature file ({exc})") from exc
    if len(present) != len(item_ids):
        raise FeatureFileError(f"{path}: item_id/feature/present arrays disagree in length")
    check_feature_rows(path, np.asarray(item_ids), features)
    return item_ids, features, present


def write_metadata(path, record: dict) -> None:
    record = {"format_version": FORMAT_VERSION, **record}
    text = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    atomic_write(Path(path), lambda f: f.write(text))


def read_metadata(path) -> dict:
    path = Path(path)
    if not path.exists():
        return {}
    with open(path) as handle:
        return json.load(handle)
