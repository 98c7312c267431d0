"""Amazon 2014 raw files (McAuley et al.): reviews, metadata and binary image features.

``<src>/reviews_<Cat>_5.json.gz``   one review dict per line (JSON or Python literal)
``<src>/meta_<Cat>.json.gz``        one item dict per line (Python literal)
``<src>/image_features_<Cat>.b``    optional; see :mod:`dataset_prep.image_features`

Interactions are the reviews, sorted by ``unixReviewTime`` (stable). A user who reviewed the
same item twice keeps both rows: they are two interactions in the source.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from .common import (
    DatasetPrepError,
    SourceData,
    categories_text,
    clean_text,
    iter_records,
    sort_interactions,
)
from .pipeline import PrepOptions, prepare as _prepare

TEXT_FIELDS = ("title", "description", "brand", "categories")


def _reviews_path(src: Path, category: str) -> Path:
    for candidate in (f"reviews_{category}_5.json.gz", f"reviews_{category}.json.gz"):
        if (src / candidate).is_file():
            return src / candidate
    raise DatasetPrepError(f"reviews file not found: {src / f'reviews_{category}_5.json.gz'}")


def read_reviews(path) -> pd.DataFrame:
    rows = []
    for lineno, rec in iter_records(path):
        try:
            user, item = str(rec["reviewerID"]), str(rec["asin"])
            rating, ts = float(rec["overall"]), float(rec["unixReviewTime"])
        except KeyError as exc:
            raise DatasetPrepError(f"{path}:{lineno}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError):
            raise DatasetPrepError(f"{path}:{lineno}: 'overall' and 'unixReviewTime' must be "
                                   f"numbers, got {rec.get('overall')!r}, {rec.get('unixReviewTime')!r}") from None
        rows.append((user, item, rating, ts))
    if not rows:
        raise DatasetPrepError(f"{path}: no reviews")
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return sort_interactions(inter)


def read_meta(path, items) -> dict:
    """``{field: {asin: text}}`` for the items in ``items`` (the meta files cover far more)."""
    fields = {name: {} for name in TEXT_FIELDS}
    first_line = {}
    for lineno, rec in iter_records(path):
        asin = rec.get("asin")
        if asin is None:
            raise DatasetPrepError(f"{path}:{lineno}: missing field 'asin'")
        if asin not in items:
            continue
        if asin in first_line:  # which record would win is not ours to guess
            raise DatasetPrepError(
                f"{path}:{lineno}: asin {asin!r} already described on line {first_line[asin]}; "
                f"remove one of the two records"
            )
        first_line[asin] = lineno
        for name in ("title", "description", "brand"):
            text = clean_text(rec.get(name))
            if text:
                fields[name][asin] = text
        cats = categories_text(rec.get("categories"))
        if cats:
            fields["categories"][asin] = cats
    return fields



def attach_metadata(source: SourceData, meta, missing_reason: str) -> None:
    """Title and category text from an Amazon metadata file, or why they are unavailable."""
    if meta is None:
        source.missing_reasons.update(text=missing_reason, category=missing_reason)
        return
    source.meta_file = str(Path(meta).resolve())
    source.files.append(source.meta_file)
    source.item_fields = read_meta(meta, set(source.inter["item_id"]))
    source.default_text_fields = ["title"]
    source.title_field, source.category_field = "title", "categories"

def read(src, category: str, name: Optional[str] = None) -> SourceData:
    src = Path(src)
    if not src.is_dir():
        raise DatasetPrepError(f"source directory not found: {src}")
    reviews = _reviews_path(src, category)
    inter = read_reviews(reviews)
    files = [str(reviews.resolve())]
    source = SourceData(name=name or category, source_format="amazon2014", inter=inter, files=files)
    meta = src / f"meta_{category}.json.gz"
    attach_metadata(source, meta if meta.is_file() else None, f"no metadata file {meta}")
    image = src / f"image_features_{category}.b"
    if image.is_file():
        source.image_file = str(image.resolve())
        files.append(source.image_file)
    else:
        source.missing_reasons["image"] = f"no image features file {image}"
    return source


def prepare(src, category: str, name: Optional[str] = None, options: Optional[PrepOptions] = None) -> dict:
    """Read ``src`` and write ``<options.out>/<name or category>/``; return the metadata record."""
    return _prepare(read(src, category, name), options)
