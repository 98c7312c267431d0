"""MMRec-style data (Zhou et al.'s multimodal recommendation toolbox).

``<src>/<name>.inter``  tab-separated with header ``userID itemID rating timestamp x_label``
                        (x_label 0/1/2 = MMRec's train/valid/test; recorded, not used)
``<src>/text_feat.npy`` / ``<src>/image_feat.npy``  ``[n_items, d]``, row i = itemID i

The feature rows are copied as the ``text`` and ``image`` modalities; no encoder is run.
MMRec's own userID/itemID values are the tokens (they are the only ids the files carry).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from .common import DatasetPrepError, SourceData, require_file, sort_interactions
from .pipeline import PrepOptions, prepare as _prepare

FEATURE_FILES = {"text": "text_feat.npy", "image": "image_feat.npy"}


def read_inter(path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DatasetPrepError(f"{path}: cannot read as a tab-separated table ({exc})") from None
    for column in ("userID", "itemID", "timestamp"):
        if column not in df.columns:
            raise DatasetPrepError(f"{path}: missing column {column!r} (header: {', '.join(df.columns)})")
    if "rating" not in df.columns:
        df["rating"] = "1"
    out = pd.DataFrame({"user_id": df["userID"].str.strip(), "item_id": df["itemID"].str.strip()})
    for src_col, col in (("rating", "rating"), ("timestamp", "timestamp")):
        values = pd.to_numeric(df[src_col], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetPrepError(f"{path}:{row + 2}: field {src_col!r} is not a number: "
                                   f"{df[src_col].iloc[row]!r}")
        out[col] = values.astype(float)
    bad = ~out["item_id"].str.fullmatch(r"\d+")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetPrepError(f"{path}:{row + 2}: itemID {out['item_id'].iloc[row]!r} is not a "
                               f"non-negative integer row index into the feature files")
    out.attrs["x_label"] = df["x_label"].value_counts().sort_index().to_dict() if "x_label" in df else None
    return out


def read_feature_array(path, n_needed: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetPrepError(f"{path}: not a numpy .npy array ({exc})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DatasetPrepError(f"{path}: expected a numeric [n_items, dim] array, got {arr.dtype} {arr.shape}")
    if arr.shape[0] < n_needed:
        raise DatasetPrepError(f"{path}: has {arr.shape[0]} rows but the .inter uses itemID up to "
                               f"{n_needed - 1}; rows must be aligned to itemID")
    return arr.astype(np.float32, copy=False)


def read(src, name: str) -> SourceData:
    src = Path(src)
    if not src.is_dir():
        raise DatasetPrepError(f"source directory not found: {src}")
    inter_file = require_file(src / f"{name}.inter", "MMRec interaction file")
    raw = read_inter(inter_file)
    x_label = raw.attrs.pop("x_label")
    inter = sort_interactions(raw)
    source = SourceData(name=name, source_format="mmrec", inter=inter, files=[inter_file])
    if x_label is not None:
        source.notes["x_label_counts"] = {str(k): int(v) for k, v in x_label.items()}
        source.notes["x_label"] = "MMRec's split (0 train, 1 valid, 2 test); not used"
    items = pd.unique(inter["item_id"])
    n_needed = int(max(int(i) for i in items)) + 1
    for modality, filename in FEATURE_FILES.items():
        path = src / filename
        if not path.is_file():
            source.missing_reasons[modality] = f"no {path}"
            continue
        arr = read_feature_array(path, n_needed)
        source.precomputed[modality] = (str(path.resolve()), {i: arr[int(i)] for i in items})
        source.files.append(str(path.resolve()))
    source.missing_reasons["category"] = "MMRec data has no category paths"
    return source


def prepare(src, name: str, options: Optional[PrepOptions] = None) -> dict:
    """Read ``src`` and write ``<options.out>/<name>/``; return the metadata record."""
    return _prepare(read(src, name), options)
