"""From a reader's :class:`SourceData` to ``<out>/<name>/``: atomic files, features, metadata."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from recbole_bbq.data.feature_store import (
    FeatureFileError,
    feature_path,
    metadata_path,
    write_feature_file,
    write_metadata,
)

from . import image_features
from .common import (
    MODALITIES,
    DatasetPrepError,
    SourceData,
    count_stats,
    item_order,
    kcore_filter,
    write_inter,
    write_item,
)
from .text_encoders import DEFAULT_TEXT_ENCODER, get_text_encoder

MISSING_POLICIES = ("error", "zero")
_SHOW_MISSING = 5


@dataclass
class PrepOptions:
    """Options shared by every source (the CLI's common flags)."""

    out: str = "dataset"
    modalities: Optional[List[str]] = None  # None: every modality the source has
    text_encoder: str = DEFAULT_TEXT_ENCODER
    text_fields: Optional[List[str]] = None  # None: the source's default (title)
    missing_features: str = "error"
    kcore: Optional[int] = None
    batch_size: int = 64
    show_progress: bool = True
    verbose: bool = True  # progress lines (logged at INFO on dataset_prep, else printed)


logger = logging.getLogger(__name__)


def plain_line(level: int, message: str) -> str:
    """How a report reads on a terminal: progress as it is, warnings prefixed ``warning:``."""
    return f"{logging.getLevelName(level).lower()}: {message}" if level >= logging.WARNING else message


def _report(level: int, message: str) -> None:
    """To the ``dataset_prep`` logger when logging is set up (the CLI's handler, a caller's,
    pytest's); otherwise printed, so a script calling the pipeline sees what it always saw."""
    if logger.hasHandlers():
        logger.log(level, message)
    else:
        print(plain_line(level, message), flush=True)


def _log(options: PrepOptions, message: str) -> None:
    if options.verbose:
        _report(logging.INFO, message)


def _check_options(source: SourceData, options: PrepOptions) -> List[str]:
    if options.missing_features not in MISSING_POLICIES:
        raise DatasetPrepError(f"--missing-features must be one of {MISSING_POLICIES}, "
                               f"got {options.missing_features!r}")
    if options.kcore is not None and options.kcore < 1:
        raise DatasetPrepError(f"--kcore must be a positive integer, got {options.kcore}")
    available = source.available_modalities()
    wanted = list(options.modalities) if options.modalities else available
    for modality in wanted:
        if modality not in MODALITIES:
            raise DatasetPrepError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
        if modality not in available:
            reason = source.missing_reasons.get(modality, "the source has no data for it")
            raise DatasetPrepError(
                f"modality {modality!r} is not available for {source.source_format} source "
                f"{source.name!r}: {reason} (available: {', '.join(available) or 'none'})"
            )
    if "text" in wanted and "text" not in source.precomputed:
        for name in options.text_fields or []:
            if name not in source.item_fields:
                raise DatasetPrepError(
                    f"text field {name!r} is not in the {source.source_format} source "
                    f"{source.name!r} (fields: {', '.join(sorted(source.item_fields))})"
                )
    return list(dict.fromkeys(wanted))


def _apply_missing(modality, items, present, source_file, options, what) -> int:
    """Enforce the missing-feature policy; return the number of missing items."""
    missing = [item for item, ok in zip(items, present) if not ok]
    if not missing:
        return 0
    shown = ", ".join(missing[:_SHOW_MISSING]) + (", ..." if len(missing) > _SHOW_MISSING else "")
    if options.missing_features == "error":
        raise DatasetPrepError(
            f"modality {modality!r}: {len(missing)} of {len(items)} items have no {what} in "
            f"{source_file}: {shown}; fix the source, drop the modality, or pass "
            f"--missing-features zero"
        )
    _report(logging.WARNING, f"modality {modality!r}: {len(missing)} of {len(items)} items have "
                             f"no {what} in {source_file} and get a zero vector (present=False): {shown}")
    return len(missing)


def _text_features(texts: Dict[str, str], items, encoder):
    """Encode each distinct text once (many items share a category path)."""
    present = np.array([bool(texts.get(i)) for i in items])
    unique = list(dict.fromkeys(texts[i] for i, ok in zip(items, present) if ok))
    vectors = encoder.encode(unique) if unique else np.zeros((0, 1), np.float32)
    row = {text: n for n, text in enumerate(unique)}
    feats = np.zeros((len(items), vectors.shape[1]), np.float32)
    for n, (item, ok) in enumerate(zip(items, present)):
        if ok:
            feats[n] = vectors[row[texts[item]]]
    return feats, present


def _joined_texts(source: SourceData, fields: List[str], items) -> Dict[str, str]:
    texts = {}
    for item in items:
        parts = [source.item_fields[f].get(item, "") for f in fields]
        texts[item] = ". ".join(p for p in parts if p)
    return texts


def _rows_from_table(table: dict, items, dim: int):
    """Dense ``[n_items, dim]`` rows from ``{item: vector}``; absent items get zeros."""
    present = np.array([i in table for i in items])
    feats = np.zeros((len(items), dim), np.float32)
    for n, item in enumerate(items):
        if present[n]:
            feats[n] = table[item]
    return feats, present


def _build_modality(modality, source: SourceData, items, options, get_encoder) -> tuple:
    """Return ``(features, present, metadata entry without counts, what a missing item lacks)``."""
    if modality in source.precomputed:
        path, table = source.precomputed[modality]
        dim = len(next(iter(table.values()))) if table else 0
        feats, present = _rows_from_table(table, items, dim)
        info = {"encoder": f"precomputed ({Path(path).name})", "source_files": [path],
                "source_fields": [Path(path).stem]}
        return feats, present, info, "precomputed feature row"
    if modality == "image":
        table = image_features.read_image_features(source.image_file, items)
        feats, present = _rows_from_table(table, items, image_features.IMAGE_DIM)
        info = {"encoder": image_features.encoder_name(source.image_file),
                "source_files": [source.image_file], "source_fields": ["image_features"]}
        return feats, present, info, "image record"
    fields = (options.text_fields or source.default_text_fields) if modality == "text" \
        else [source.category_field]
    texts = _joined_texts(source, fields, items)
    encoder = get_encoder()
    _log(options, f"encoding {modality} ({'+'.join(fields)}) of {len(items)} items with {encoder.name}")
    feats, present = _text_features(texts, items, encoder)
    info = {"encoder": encoder.name, "source_files": [source.meta_file], "source_fields": fields}
    if encoder.path and encoder.path != encoder.name:
        info["encoder_path"] = encoder.path
    return feats, present, info, f"text in field(s) {'+'.join(fields)}"


def prepare(source: SourceData, options: Optional[PrepOptions] = None) -> dict:
    """Write ``<out>/<name>/``; return the metadata record (also written as ``<name>.features.json``)."""
    options = options or PrepOptions()
    started = time.time()
    modalities = _check_options(source, options)
    out_dir = Path(options.out) / source.name
    source_counts = count_stats(source.inter)
    inter = kcore_filter(source.inter, options.kcore)
    if inter.empty:
        raise DatasetPrepError(f"no interactions left for {source.name!r}"
                               + (f" after {options.kcore}-core filtering" if options.kcore else ""))
    items = item_order(inter)

    encoder_cache = {}

    def get_encoder():
        if "enc" not in encoder_cache:  # load once, shared by text and category
            encoder_cache["enc"] = get_text_encoder(
                options.text_encoder, options.batch_size, options.show_progress and options.verbose)
        return encoder_cache["enc"]

    # Features first: a missing-feature error must not leave a half-written dataset behind.
    built = {}
    for modality in modalities:
        feats, present, info, what = _build_modality(modality, source, items, options, get_encoder)
        n_missing = _apply_missing(modality, items, present, info["source_files"][0], options, what)
        built[modality] = (feats, present, {
            **info,
            "file": feature_path(out_dir, source.name, modality).name,
            "dim": int(feats.shape[1]),
            "n_items": len(items),
            "n_missing": n_missing,
            "missing_policy": options.missing_features,
        })

    write_inter(out_dir / f"{source.name}.inter", inter)
    titles = source.item_fields.get(source.title_field, {}) if source.title_field else {}
    cats = source.item_fields.get(source.category_field, {}) if source.category_field else {}
    write_item(out_dir / f"{source.name}.item", items, titles, cats)
    for modality, (feats, present, _) in built.items():
        try:
            write_feature_file(feature_path(out_dir, source.name, modality), items, feats, present)
        except FeatureFileError as exc:
            raise DatasetPrepError(str(exc)) from None

    counts = count_stats(inter)
    record = {
        "dataset": source.name,
        "source_format": source.source_format,
        "source_files": source.files,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": counts,
        "source_counts": source_counts,
        "kcore": options.kcore,
        "duplicate_interactions": "kept (every (user, item) row of the source is an interaction)",
        "n_duplicate_pairs": int(inter.duplicated(["user_id", "item_id"]).sum()),
        "modalities": {m: entry for m, (_, _, entry) in built.items()},
        **({"notes": source.notes} if source.notes else {}),
    }
    write_metadata(metadata_path(out_dir, source.name), record)
    record["elapsed_s"] = round(time.time() - started, 2)
    record["out_dir"] = str(out_dir)
    _log(options, summary(record))
    return record


def summary(record: dict) -> str:
    c = record["counts"]
    lines = [
        f"prepared {record['dataset']} ({record['source_format']}) in {record['out_dir']} "
        f"in {record['elapsed_s']:.1f}s",
        f"  users {c['users']}, items {c['items']}, interactions {c['interactions']}, "
        f"avg seq len {c['avg_seq_len']:.2f}"
        + (f" (after {record['kcore']}-core)" if record["kcore"] else ""),
    ]
    for name, m in record["modalities"].items():
        lines.append(f"  {name}: {m['file']} dim {m['dim']} encoder {m['encoder']} "
                     f"missing {m['n_missing']}/{m['n_items']}")
    if not record["modalities"]:
        lines.append("  no feature modalities")
    return "\n".join(lines)
