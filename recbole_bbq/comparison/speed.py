"""Inference speed of a trained generative model (the paper's Table 6).

Two numbers per beam size: the latency of ranking the catalogue for ONE user (batch of 1,
averaged over the first ``n_users`` test users: what the paper reports, 0.010-0.024 s on an
A800), and the throughput of the whole test split at ``eval_batch_size`` (what a batch
evaluation costs).
"""
from __future__ import annotations

from time import perf_counter

import torch
from recbole.data import create_dataset, data_preparation

from recbole_bbq import compat
from recbole_bbq.config import Config
from recbole_bbq.trainer.checkpoint import seed_everything
from recbole_bbq.utils import get_model


@torch.no_grad()
def inference_speed(model_name: str, dataset: str, config_files, config_dict: dict,
                    checkpoint: str, beams, n_users: int = 200) -> dict:
    """Seconds per user (batch of 1) and users per second (batched) for each beam size."""
    per_user, batched = {}, {}
    state = compat.load_checkpoint(checkpoint, map_location="cpu")["state_dict"]
    config = Config(model_name, dataset, config_file_list=config_files, config_dict=config_dict)
    seed_everything(config["seed"], config["reproducibility"])
    train_data, _, test_data = data_preparation(config, create_dataset(config))
    interactions = [batch[0].to(config["device"]) for batch in test_data]
    rows = [(x, i) for x in interactions for i in range(len(x))][:n_users]
    n_total = sum(len(x) for x in interactions)
    for beam in beams:
        config["beam_size"] = int(beam)  # the model checks it against topk when built
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        model.load_state_dict(state)
        model.eval()
        # one call first, so first-call set-up (allocations, kernels' primitive caches)
        # stays out of the timing
        model.full_sort_predict(rows[0][0][[0]])
        start = perf_counter()
        for interaction, i in rows:
            model.full_sort_predict(interaction[[i]])
        per_user[str(beam)] = (perf_counter() - start) / len(rows)
        start = perf_counter()
        for interaction in interactions:
            model.full_sort_predict(interaction)
        batched[str(beam)] = n_total / (perf_counter() - start)
    return {"per_user_s": per_user, "batched_users_per_s": batched, "n_users": len(rows),
            "n_test_users": n_total, "device": str(config["device"]),
            "torch_threads": torch.get_num_threads()}
