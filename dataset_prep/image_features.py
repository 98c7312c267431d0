"""Reader for Amazon's binary image features (``image_features_<Category>.b``).

The file is a plain sequence of records: 10 bytes of ASCII ASIN followed by 4096
little-endian float32 (the CNN features McAuley et al. released). The files are GBs, so they
are streamed and only the wanted items are kept.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, Optional

import numpy as np

from .common import DatasetPrepError

ASIN_BYTES = 10
IMAGE_DIM = 4096
RECORD_BYTES = ASIN_BYTES + 4 * IMAGE_DIM
_CHUNK_RECORDS = 256


def encoder_name(path) -> str:
    return f"amazon-cnn-4096 ({os.path.basename(str(path))})"


def read_image_features(path, wanted: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """Return ``{asin: float32[4096]}`` for the wanted ASINs (all if ``wanted`` is None).

    A repeated ASIN keeps its first record. A file whose size is not a whole number of
    records is an error naming the offset of the truncated record.
    """
    path = str(path)
    wanted = None if wanted is None else set(wanted)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DatasetPrepError(f"image features file {path}: cannot read ({exc})") from None
    if size % RECORD_BYTES:
        offset = size - size % RECORD_BYTES
        raise DatasetPrepError(
            f"{path}: truncated record at byte offset {offset} ({size - offset} of "
            f"{RECORD_BYTES} bytes; records are a 10-byte ASIN + 4096 float32)"
        )
    found: Dict[str, np.ndarray] = {}
    offset = 0
    with open(path, "rb") as handle:
        while wanted is None or len(found) < len(wanted):
            chunk = handle.read(RECORD_BYTES * _CHUNK_RECORDS)
            if not chunk:
                break
            if len(chunk) % RECORD_BYTES:  # the file changed under us
                raise DatasetPrepError(f"{path}: truncated record at byte offset "
                                       f"{offset + len(chunk) - len(chunk) % RECORD_BYTES}")
            for start in range(0, len(chunk), RECORD_BYTES):
                raw = chunk[start:start + ASIN_BYTES]
                try:
                    asin = raw.decode("ascii").strip("\x00 ")
                except UnicodeDecodeError:
                    raise DatasetPrepError(
                        f"{path}: byte offset {offset + start}: ASIN {raw!r} is not ASCII; "
                        f"not an Amazon image features file"
                    ) from None
                if asin in found or (wanted is not None and asin not in wanted):
                    continue
                vec = np.frombuffer(chunk, "<f4", IMAGE_DIM, start + ASIN_BYTES).astype(np.float32)
                if not np.isfinite(vec).all():
                    raise DatasetPrepError(f"{path}: byte offset {offset + start}: non-finite "
                                           f"values in the image features of {asin}")
                found[asin] = vec
            offset += len(chunk)
    return found
