"""Turn public recommendation datasets into RecBole atomic files plus dense item features.

Readers: :mod:`~dataset_prep.amazon2014` (raw Amazon 2014), :mod:`~dataset_prep.p5` (P5's
processed layout), :mod:`~dataset_prep.mmrec` (MMRec's layout) and :mod:`~dataset_prep.ml100k`
(RecBole's bundled MovieLens-100k). Each has ``read(...)`` and ``prepare(..., options)``;
the CLI is ``python -m dataset_prep <format> ...``. Output format:
:mod:`recbole_bbq.data.feature_store`.
"""
from .common import DatasetPrepError, SourceData, kcore_filter
from .pipeline import PrepOptions, prepare
from .text_encoders import DEFAULT_TEXT_ENCODER, get_text_encoder

__all__ = [
    "DatasetPrepError",
    "SourceData",
    "PrepOptions",
    "prepare",
    "kcore_filter",
    "get_text_encoder",
    "DEFAULT_TEXT_ENCODER",
]
