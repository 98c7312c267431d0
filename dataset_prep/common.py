"""Shared pieces: the error type, text cleaning, line parsing, k-core and atomic-file writing."""
from __future__ import annotations

import ast
import csv
import gzip
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pandas as pd

from recbole_bbq.fileio import atomic_write

INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
ITEM_HEADER = ["item_id:token", "title:token_seq", "categories:token_seq"]
INTER_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
MODALITIES = ("text", "category", "image")


class DatasetPrepError(Exception):
    """Bad or incomplete input; the message names the file / line / field / item at fault."""


@dataclass
class SourceData:
    """What a reader hands to :func:`dataset_prep.pipeline.prepare`.

    ``item_fields`` maps a text field name (``title``, ``description``, ...) to
    ``{item token: cleaned text}``; ``precomputed`` maps a modality to
    ``(source file, {item token: vector})`` for sources that ship ready features.
    """

    name: str
    source_format: str
    inter: pd.DataFrame
    files: List[str]
    item_fields: Dict[str, Dict[str, str]] = field(default_factory=dict)
    meta_file: Optional[str] = None
    default_text_fields: List[str] = field(default_factory=list)
    title_field: Optional[str] = None
    category_field: Optional[str] = None
    image_file: Optional[str] = None
    precomputed: Dict[str, Tuple[str, dict]] = field(default_factory=dict)
    missing_reasons: Dict[str, str] = field(default_factory=dict)
    notes: Dict[str, object] = field(default_factory=dict)

    def available_modalities(self) -> List[str]:
        found = []
        if self.default_text_fields or "text" in self.precomputed:
            found.append("text")
        if self.category_field or "category" in self.precomputed:
            found.append("category")
        if self.image_file or "image" in self.precomputed:
            found.append("image")
        return found


_SPACES = re.compile(r"\s+")


def clean_text(value) -> str:
    """Unescape HTML entities and collapse tabs/newlines/runs of spaces (atomic files are TSV)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return _SPACES.sub(" ", html.unescape(str(value))).strip()


def categories_text(paths) -> str:
    """``[["Beauty", "Makeup", "Nails"], ...]`` -> ``"Beauty > Makeup > Nails | ..."``."""
    if not paths:
        return ""
    if isinstance(paths, str):
        return clean_text(paths)
    parts = []
    for path in paths:
        if isinstance(path, str):
            path = [path]
        text = " > ".join(t for t in (clean_text(p) for p in path) if t)
        if text and text not in parts:
            parts.append(text)
    return " | ".join(parts)


def open_text(path):
    path = str(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def parse_record(line: str, path, lineno: int) -> dict:
    """One dict per line: JSON, or a Python literal (Amazon's 2014 files mix both)."""
    try:
        record = json.loads(line)
    except ValueError:
        try:
            record = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise DatasetPrepError(
                f"{path}:{lineno}: not a JSON object or Python dict literal ({exc.__class__.__name__})"
            ) from None
    if not isinstance(record, dict):
        raise DatasetPrepError(f"{path}:{lineno}: expected a dict, got {type(record).__name__}")
    return record


def iter_records(path) -> Iterator[Tuple[int, dict]]:
    """Yield ``(line number, dict)`` for each non-blank line of a (gzipped) record file."""
    try:
        with open_text(path) as handle:
            for lineno, line in enumerate(handle, 1):
                line = line.strip()
                if line:
                    yield lineno, parse_record(line, path, lineno)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetPrepError(f"{path}: cannot read ({exc})") from None


def require_file(path, what: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise DatasetPrepError(f"{what} not found: {path}")
    return str(path.resolve())


def sort_interactions(inter: pd.DataFrame) -> pd.DataFrame:
    """Sort by user, then time; two stable passes so equal timestamps keep source order."""
    inter = inter.sort_values("timestamp", kind="mergesort")
    inter = inter.sort_values("user_id", kind="mergesort")
    return inter.reset_index(drop=True)


def kcore_filter(inter: pd.DataFrame, k: Optional[int]) -> pd.DataFrame:
    """Drop users/items with < k interactions, repeatedly, until none is left to drop.

    Every row counts, so duplicate (user, item) pairs count once each.
    """
    if not k or k <= 1:
        return inter
    while True:
        user_counts = inter["user_id"].map(inter["user_id"].value_counts())
        item_counts = inter["item_id"].map(inter["item_id"].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return inter.reset_index(drop=True)
        inter = inter[keep]


def item_order(inter: pd.DataFrame) -> List[str]:
    """Items in order of first appearance in the (sorted) interactions."""
    return pd.unique(inter["item_id"]).tolist()


def count_stats(inter: pd.DataFrame) -> dict:
    users = int(inter["user_id"].nunique())
    return {
        "users": users,
        "items": int(inter["item_id"].nunique()),
        "interactions": int(len(inter)),
        "avg_seq_len": round(len(inter) / users, 4) if users else 0.0,
    }


def _atomic_text_write(path: Path, rows, header) -> None:
    def write(handle):
        # QUOTE_MINIMAL: a title with a double quote is written quoted, which is how
        # pandas (RecBole's reader) reads it back intact.
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        handle.write("\t".join(header) + "\n")
        writer.writerows(rows)

    atomic_write(path, write, mode="w")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_inter(path, inter: pd.DataFrame) -> None:
    rows = (
        (u, i, _num(r), _num(t))
        for u, i, r, t in inter[INTER_COLUMNS].itertuples(index=False, name=None)
    )
    _atomic_text_write(Path(path), rows, INTER_HEADER)


def write_item(path, items: List[str], titles: Dict[str, str], categories: Dict[str, str]) -> None:
    rows = ((i, titles.get(i, ""), categories.get(i, "")) for i in items)
    _atomic_text_write(Path(path), rows, ITEM_HEADER)
