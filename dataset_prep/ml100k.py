"""RecBole's bundled MovieLens-100k (``recbole/dataset_example/ml-100k``).

The interactions are copied; ``text`` is movie_title + release_year + genres (the ``class``
column) and ``category`` is the genres. RecBole is located, never imported: some of its
modules break on numpy 2.
"""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from typing import Optional

import pandas as pd

from .common import DatasetPrepError, SourceData, clean_text, require_file, sort_interactions
from .pipeline import PrepOptions, prepare as _prepare

NAME = "ml-100k"


def bundled_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetPrepError("recbole is not installed, so its bundled ml-100k cannot be found; "
                               "install recbole==1.2.1 or pass --src DIR")
    return Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / NAME


def _read_atomic(path) -> pd.DataFrame:
    """A RecBole atomic file as strings; columns renamed from ``name:type`` to ``name``."""
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except (OSError, ValueError) as exc:
        raise DatasetPrepError(f"{path}: cannot read as a RecBole atomic file ({exc})") from None
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def read(src=None) -> SourceData:
    src = Path(src) if src else bundled_dir()
    inter_file = require_file(src / f"{NAME}.inter", "ml-100k interaction file")
    item_file = require_file(src / f"{NAME}.item", "ml-100k item file")
    raw = _read_atomic(inter_file)
    for column in ("user_id", "item_id", "rating", "timestamp"):
        if column not in raw.columns:
            raise DatasetPrepError(f"{inter_file}: missing column {column!r}")
    inter = raw[["user_id", "item_id"]].copy()
    for column in ("rating", "timestamp"):
        values = pd.to_numeric(raw[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().nonzero()[0][0])
            raise DatasetPrepError(f"{inter_file}:{row + 2}: field {column!r} is not a number")
        inter[column] = values.astype(float)
    items = _read_atomic(item_file)
    for column in ("item_id", "movie_title", "release_year", "class"):
        if column not in items.columns:
            raise DatasetPrepError(f"{item_file}: missing column {column!r} (header: {', '.join(items.columns)})")
    fields = {
        "movie_title": {i: clean_text(t) for i, t in zip(items["item_id"], items["movie_title"]) if clean_text(t)},
        "release_year": {i: y.strip() for i, y in zip(items["item_id"], items["release_year"]) if y.strip()},
        "class": {i: ", ".join(g.split()) for i, g in zip(items["item_id"], items["class"]) if g.strip()},
    }
    return SourceData(
        name=NAME, source_format="ml100k", inter=sort_interactions(inter),
        files=[inter_file, item_file], item_fields=fields, meta_file=item_file,
        default_text_fields=["movie_title", "release_year", "class"],
        title_field="movie_title", category_field="class",
        missing_reasons={"image": "ml-100k has no images"},
    )


def prepare(src=None, options: Optional[PrepOptions] = None) -> dict:
    """Write ``<options.out>/ml-100k/`` from the bundled (or given) ml-100k; return the metadata."""
    return _prepare(read(src), options)
