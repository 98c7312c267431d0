"""Collaborative item embeddings for LETTER's tokenizer: RecBole's SASRec trained on the
training split, in this process or in a child process.

LETTER trains it in a fresh interpreter by default (``letter_cf_isolated``) and takes back
only the embedding table, so the parent's memory and random state stay as they were. (This
was first done because in-process training made every later generator step about 2x slower;
the cause was RecBole's model import switching on autograd's anomaly detection, which
``compat.anomaly_mode_kept`` now undoes, so in-process training is as fast.)
"""
from __future__ import annotations

import os

import torch
from recbole.trainer import Trainer

from recbole_bbq import compat
from recbole_bbq.trainer.base import TrainingRunMixin
from recbole_bbq.trainer.checkpoint import seed_everything


class CollaborativeTrainer(TrainingRunMixin, Trainer):
    """RecBole's trainer with the plugin's checkpoint and recipe handling."""


def fit_sasrec_item_embeddings(cf_config, train_data) -> torch.Tensor:
    """Train RecBole's SASRec under ``cf_config`` and return its item embeddings (on the CPU,
    so a child process can hand them back)."""
    with compat.anomaly_mode_kept():  # RecBole's model import turns anomaly mode on
        from recbole.model.sequential_recommender import SASRec

    seed_everything(cf_config["seed"], cf_config["reproducibility"])
    sasrec = SASRec(cf_config, train_data.dataset).to(cf_config["device"])
    trainer = CollaborativeTrainer(cf_config, sasrec)
    trainer.fit(train_data, None, verbose=True, saved=False,
                show_progress=bool(cf_config["show_progress"]))
    return sasrec.item_embedding.weight.detach().cpu()


def fit_in_child_process(cf_config, train_data) -> torch.Tensor:
    """``fit_sasrec_item_embeddings`` in a fresh interpreter (:func:`run_child_job`).

    A plain subprocess, not multiprocessing: spawn re-imports the caller's ``__main__``,
    which re-runs any user script without a ``__main__`` guard.
    """
    import pickle
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="letter-sasrec-") as tmp:
        job, out = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "embeddings.pt")
        with open(job, "wb") as handle:
            pickle.dump((cf_config, train_data), handle)
        child = (f"import sys; from {__name__} import run_child_job; "
                 f"run_child_job(sys.argv[1], sys.argv[2])")
        done = subprocess.run([sys.executable, "-c", child, job, out], check=False)
        if done.returncode != 0 or not os.path.isfile(out):
            raise RuntimeError(
                f"LETTER: the SASRec child process failed (exit code {done.returncode}); its "
                f"error is printed above. Set letter_cf_isolated: False to train it in-process"
            )
        return torch.load(out, weights_only=True)


def run_child_job(job: str, out: str) -> None:
    """The child process of :func:`fit_in_child_process`: read the pickled ``(config,
    train_data)`` from ``job``, train, and save the embeddings to ``out``."""
    import pickle

    with open(job, "rb") as handle:
        config, train_data = pickle.load(handle)
    compat.start_logging(config)
    torch.save(fit_sasrec_item_embeddings(config, train_data), out)
