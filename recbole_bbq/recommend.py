"""Use a trained model: top-k items for users or for a history of item tokens, and the
semantic-ID table of a generative model as TSV.

    from recbole_bbq.recommend import load_trained, recommend
    trained = load_trained("saved/BBQRec-Beauty-<time>-<hex>.pth")
    recommend(trained, users=["A1YJEY40YUW4SE"], topk=10)
    recommend(trained, history=["B004756YJA", "B00DOZ2B5U"], topk=10)

The checkpoint carries its configuration (a plain mapping), so the model is rebuilt exactly as
it was trained, on the prepared dataset it names (``data_path`` may point elsewhere). A
user's history is every interaction of that user in the dataset, oldest first, cut to the
last ``MAX_ITEM_LIST_LENGTH``: the next item after all that is known. In a given history,
item tokens the dataset does not know are skipped with a note in the result (``skipped``);
a history with no known item is an error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from recbole.data import create_dataset
from recbole.data.interaction import Interaction

from recbole_bbq import compat
from recbole_bbq.config import Config, ConfigError, known_config_keys
from recbole_bbq.fileio import VALUES_BEFORE_KEYS_EXISTED, atomic_write_text
from recbole_bbq.modules.semantic_ids import semantic_id_table
from recbole_bbq.trainer.base import run_identity
from recbole_bbq.utils import get_model

# keys a checkpoint records that describe the machine or the run, not the model
_RUNTIME_KEYS = {"data_path", "checkpoint_dir", "results_dir", "device", "use_gpu", "gpu_id",
                 "resume_checkpoint", "tokenizer_checkpoint", "state", "show_progress",
                 "local_rank", "world_size", "nproc", "offset", "ip", "port", "single_spec",
                 "train_neg_sample_args", "valid_neg_sample_args", "test_neg_sample_args",
                 # derived by RecBole's Config from the others (and saved as plain strings)
                 "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger", "eval_args"}


@dataclass
class Trained:
    config: Config
    model: torch.nn.Module
    dataset: object
    checkpoint: str


def load_trained(checkpoint: str, data_path: Optional[str] = None) -> Trained:
    """Rebuild the model a checkpoint (best or ``-latest``) was saved from, weights loaded."""
    state = compat.load_checkpoint(checkpoint, map_location="cpu")
    saved = state.get("config") if isinstance(state, dict) else None
    if not isinstance(saved, dict) or "model" not in saved or "state_dict" not in state:
        raise compat.CheckpointError(
            f"{checkpoint} is not a model checkpoint of this package (no config / weights)")
    model_name, dataset_name = saved["model"], saved["dataset"]
    if data_path is None:
        recorded = str(saved.get("data_path") or "dataset/")
        data_path = os.path.dirname(recorded.rstrip("/")) if os.path.basename(
            recorded.rstrip("/")) == dataset_name else recorded
    known = known_config_keys()
    overrides = {k: v for k, v in saved.items()
                 if k in known and k not in _RUNTIME_KEYS and k not in ("model", "dataset")}
    # a key added after the checkpoint was saved stands for how the code behaved then, not
    # for today's default (BBQRec's history reading changed default on 6 Dec, shapes unchanged)
    overrides.update({k: v for k, v in VALUES_BEFORE_KEYS_EXISTED.items()
                      if k not in saved and k in known and k not in _RUNTIME_KEYS})
    overrides.update(data_path=data_path, use_gpu=False, state="WARNING", show_progress=False)
    config = Config(model_name, dataset_name, config_dict=overrides)
    dataset = create_dataset(config)
    model = get_model(model_name)(config, dataset)
    identity = state.get("identity") or {}
    mine = run_identity(config, model)
    if identity and identity.get("items_sha256") != mine["items_sha256"]:
        raise compat.CheckpointError(
            f"{checkpoint} was trained on another item set of {dataset_name} than the one in "
            f"{data_path}")
    model.load_state_dict(state["state_dict"])
    model.eval()
    return Trained(config, model, dataset, str(checkpoint))


def _user_histories(trained: Trained, users: Sequence[str]) -> List[List[int]]:
    ds = trained.dataset
    uid, iid, time_field = ds.uid_field, ds.iid_field, ds.time_field
    inter = ds.inter_feat
    histories = []
    for user in users:
        try:
            internal = int(ds.token2id(uid, str(user)))
        except ValueError:
            raise ConfigError(f"user {user!r} is not in dataset {trained.config['dataset']}") from None
        rows = inter[inter[uid] == internal]  # a DataFrame before RecBole's build()
        if time_field:
            rows = rows.sort_values(time_field, kind="mergesort")
        histories.append([int(i) for i in rows[iid].tolist()])
    return histories


def _item_ids(trained: Trained, tokens: Sequence[str]):
    ds = trained.dataset
    known, skipped = [], []
    for token in tokens:
        try:
            known.append(int(ds.token2id(ds.iid_field, str(token))))
        except ValueError:
            skipped.append(str(token))
    if not known:
        raise ConfigError(f"none of the history's items {list(tokens)} is in dataset "
                          f"{trained.config['dataset']}")
    return known, skipped


@torch.no_grad()
def _top_k(trained: Trained, histories: List[List[int]], topk: int):
    model, config = trained.model, trained.config
    max_len = int(config["MAX_ITEM_LIST_LENGTH"])
    seqs = torch.zeros(len(histories), max_len, dtype=torch.long)
    lengths = torch.zeros(len(histories), dtype=torch.long)
    for row, history in enumerate(histories):
        recent = history[-max_len:]
        seqs[row, : len(recent)] = torch.as_tensor(recent)
        lengths[row] = len(recent)
    interaction = Interaction({model.ITEM_SEQ: seqs, model.ITEM_SEQ_LEN: lengths})
    scores = model.full_sort_predict(interaction)
    scores[:, 0] = float("-inf")  # the padding item
    values, items = scores.topk(min(topk, scores.shape[1] - 1), dim=1)
    tokens = trained.dataset.field2id_token[trained.dataset.iid_field]
    return [[(str(tokens[i]), float(v)) for i, v in zip(row_items.tolist(), row_values.tolist())
             if v != float("-inf")]
            for row_items, row_values in zip(items, values)]


def recommend(trained: Trained, users: Optional[Sequence[str]] = None,
              history: Optional[Sequence[str]] = None, topk: int = 10) -> List[dict]:
    """Top-``topk`` ``(item token, score)`` per user, or for one history of item tokens.

    Generative models score by beam search (log-probabilities; at most ``beam_size`` items
    are generated), other models by their full-catalogue scores.
    """
    if (users is None) == (history is None):
        raise ConfigError("give either users or a history of item tokens")
    if users is not None:
        histories = _user_histories(trained, users)
        ranked = _top_k(trained, histories, topk)
        return [{"user": str(u), "items": r} for u, r in zip(users, ranked)]
    known, skipped = _item_ids(trained, history)
    (ranked,) = _top_k(trained, [known], topk)
    return [{"history": [str(t) for t in history if str(t) not in skipped], "skipped": skipped,
             "items": ranked}]


def export_semantic_ids(trained: Trained, path: str) -> str:
    """The semantic-ID table of a generative model as TSV (``item_id``, ``level_1..L``)."""
    codes = getattr(trained.model, "item_codes", None)
    if codes is None or not codes.numel():
        raise ConfigError(f"{trained.config['model']} has no semantic IDs to export")
    tokens = trained.dataset.field2id_token[trained.dataset.iid_field]
    codes = codes.cpu().numpy()
    atomic_write_text(path, semantic_id_table(tokens, codes))
    return path
