"""P5-style processed Amazon data (Geng et al., RecSys 2022), as many later papers reuse it.

``<src>/sequential_data.txt``  ``user_idx item_idx item_idx ...`` per line, oldest first
``<src>/datamaps.json``        ``{"id2user": {idx: reviewerID}, "id2item": {idx: asin}}``
item metadata: ``<src>/item_meta.jsonl`` (asin, title, categories per line) or
``<src>/meta_<Cat>.json.gz``; optional ``<src>/image_features_<Cat>.b``.

Users and items are written with their real tokens (reviewerID / asin). There are no
timestamps: the 1-based position in the user's sequence is the timestamp, rating is 1.0.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd

from .amazon2014 import attach_metadata
from .common import DatasetPrepError, SourceData, require_file, sort_interactions
from .pipeline import PrepOptions, prepare as _prepare


def read_datamaps(path) -> tuple:
    try:
        with open(path, encoding="utf-8") as handle:
            maps = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DatasetPrepError(f"{path}: cannot read as JSON ({exc})") from None
    for key in ("id2user", "id2item"):
        if not isinstance(maps.get(key), dict):
            raise DatasetPrepError(f"{path}: missing field {key!r} (a dict of idx -> id)")
    return maps["id2user"], maps["id2item"]


def read_sequences(path, id2user: dict, id2item: dict) -> pd.DataFrame:
    rows, seen = [], {}
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetPrepError(
                    f"{path}:{lineno}: bytes that are not UTF-8 at column {exc.start + 1} "
                    f"({raw[exc.start:exc.start + 4]!r}); the file must be UTF-8 text"
                ) from None
            tokens = line.split()
            if not tokens:
                continue
            user = id2user.get(tokens[0])
            if user is None:
                raise DatasetPrepError(f"{path}:{lineno}: user idx {tokens[0]!r} is not in datamaps id2user")
            if user in seen:
                raise DatasetPrepError(f"{path}:{lineno}: user idx {tokens[0]!r} already on line {seen[user]}")
            seen[user] = lineno
            for pos, idx in enumerate(tokens[1:], 1):
                item = id2item.get(idx)
                if item is None:
                    raise DatasetPrepError(f"{path}:{lineno}: item idx {idx!r} is not in datamaps id2item")
                rows.append((user, item, 1.0, float(pos)))
    if not rows:
        raise DatasetPrepError(f"{path}: no interactions")
    return sort_interactions(pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]))


def _pick(src: Path, preferred: str, pattern: str) -> Optional[Path]:
    """``preferred`` if present, else the only file matching ``pattern`` (ambiguity is an error)."""
    if (src / preferred).is_file():
        return src / preferred
    matches = sorted(src.glob(pattern))
    if len(matches) > 1:
        raise DatasetPrepError(f"several {pattern} files in {src} and none named {preferred}: "
                               f"{', '.join(m.name for m in matches)}")
    return matches[0] if matches else None


def read(src, name: Optional[str] = None) -> SourceData:
    src = Path(src)
    if not src.is_dir():
        raise DatasetPrepError(f"source directory not found: {src}")
    name = name or src.resolve().name
    seq_file = require_file(src / "sequential_data.txt", "P5 sequence file")
    maps_file = require_file(src / "datamaps.json", "P5 datamaps file")
    id2user, id2item = read_datamaps(maps_file)
    inter = read_sequences(seq_file, id2user, id2item)
    source = SourceData(name=name, source_format="p5", inter=inter, files=[seq_file, maps_file],
                        notes={"timestamp": "1-based position in the user's sequence (source has no times)",
                               "rating": "1.0 (source has no ratings)"})
    meta = src / "item_meta.jsonl"
    if not meta.is_file():
        meta = _pick(src, f"meta_{name}.json.gz", "meta_*.json.gz")
    attach_metadata(source, meta, f"no item_meta.jsonl or meta_*.json.gz in {src}")
    image = _pick(src, f"image_features_{name}.b", "image_features_*.b")
    if image is not None:
        source.image_file = str(image.resolve())
        source.files.append(source.image_file)
    else:
        source.missing_reasons["image"] = f"no image_features_*.b file in {src}"
    return source


def prepare(src, name: Optional[str] = None, options: Optional[PrepOptions] = None) -> dict:
    """Read ``src`` and write ``<options.out>/<name or folder name>/``; return the metadata record."""
    return _prepare(read(src, name), options)
