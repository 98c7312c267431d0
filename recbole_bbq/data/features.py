"""Item features aligned to a RecBole dataset's internal item ids (row 0 = padding item)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from recbole_bbq.data.alignment import align_rows
from recbole_bbq.data.feature_store import (
    FeatureFileError,
    feature_path,
    metadata_path,
    read_feature_file,
    read_metadata,
)


@dataclass
class ItemFeatures:
    modality: str
    values: torch.Tensor  # [n_items, dim] float32; row 0 and missing items are zeros
    present: torch.Tensor  # [n_items] bool; False for padding and items without source data
    encoder: str

    @property
    def dim(self) -> int:
        return self.values.shape[1]


def dataset_modalities(config, configured) -> list:
    """The content modalities a model uses: ``configured`` when the user set ``modalities``
    (in a config file or on the command line) or when the prepared dataset has all of them;
    otherwise what the dataset has (``<name>.features.json``), ``configured``'s order first.
    A dataset prepared from P5 data has text and category but no image features, so a bare
    ``--model=BBQRec --dataset=Toys`` uses those instead of failing on the missing image file.
    """
    configured = [configured] if isinstance(configured, str) else list(configured or [])
    if "modalities" in (getattr(config, "external_config_dict", None) or {}):
        return configured
    path = metadata_path(config["data_path"], config["dataset"])
    available = list(read_metadata(path).get("modalities", {}))
    if not available or set(configured) <= set(available):
        return configured
    chosen = [m for m in configured if m in available] + sorted(set(available) - set(configured))
    if chosen != configured:
        logging.getLogger().info(
            f"modalities: {chosen} (what {path} lists; set `modalities` to choose)"
        )
    return chosen


def load_item_features(config, dataset, modalities, standardized: bool = False) -> dict:
    """Read ``<name>.feat_<modality>.npz`` for each modality and align rows to item ids.

    With ``standardized``, each modality's values are z-scored (:func:`standardize`).

    Raises :class:`FeatureFileError` naming the file and the first items it lacks, so a
    feature file made for another item set never yields silently shifted rows.
    """
    if not modalities:
        raise FeatureFileError("no content modality configured (`modalities` is empty)")
    dataset_dir, name = config["data_path"], config["dataset"]
    meta = read_metadata(metadata_path(dataset_dir, name)).get("modalities", {})
    tokens = dataset.field2id_token[dataset.iid_field]  # index 0 is '[PAD]'
    logger = logging.getLogger()
    out = {}
    for modality in modalities:
        path = feature_path(dataset_dir, name, modality)
        item_ids, values, present = read_feature_file(path)
        rows, missing = align_rows(item_ids, tokens)
        if missing:
            raise FeatureFileError(
                f"{path}: no '{modality}' features for {len(missing)} of {len(tokens) - 1} items "
                f"of dataset '{name}' (first: {missing[:5]}); re-run dataset_prep for this dataset"
            )
        aligned = np.zeros((len(tokens), values.shape[1]), dtype=np.float32)
        aligned[1:] = values[rows]
        mask = np.zeros(len(tokens), dtype=bool)
        mask[1:] = present[rows]
        n_missing = int((~mask[1:]).sum())
        if n_missing:
            logger.warning(
                f"{modality}: {n_missing} items have no source data and use a zero vector "
                f"(missing-feature policy recorded in {metadata_path(dataset_dir, name)})"
            )
        values, present_mask = torch.from_numpy(aligned), torch.from_numpy(mask)
        if standardized:
            values = standardize(values, present_mask)
        out[modality] = ItemFeatures(
            modality,
            values,
            present_mask,
            str(meta.get(modality, {}).get("encoder", "unknown")),
        )
    return out


def standardize(values: torch.Tensor, present: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Z-score each dimension over the items that have features; others stay zero.

    Sentence-encoder outputs are L2-normalised (each of 384 dims ~0.05): an RQ-VAE trained on
    them collapses onto a few codes (ml-100k, ``benchmarks/bench_standardize.py``: 1682 of
    1682 items colliding after 40 epochs, 147 when standardised). Statistics use content
    only, never interactions.
    """
    rows = values[present]
    if len(rows) == 0:
        raise FeatureFileError("no item has features: nothing to standardise")
    out = (values - rows.mean(0)) / (rows.std(0, unbiased=False) + eps)
    return torch.where(present[:, None], out, torch.zeros_like(out))
