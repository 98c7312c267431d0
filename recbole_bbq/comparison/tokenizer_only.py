"""Stage 1 alone: train a generative model's tokenizer and report its semantic-ID statistics.

The paper's Table 5 (colliding items at L = 2, 3, 4) needs only the tokenizer, so a sweep
over L does not pay for any generator training.
"""
from __future__ import annotations

from time import time

from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_bbq.config import Config
from recbole_bbq.utils import get_model, get_trainer


def train_tokenizer_only(model_name: str, dataset: str, config_files=None,
                         config_dict=None, save: bool = True) -> dict:
    """Train ``model_name``'s stage 1 and return its semantic-ID statistics.

    Returns ``{model, dataset, n_levels, stats, tokenizer_time_s, tokenizer_history,
    tokenizer_checkpoint}`` where ``stats`` holds utilisation per level and the collisions
    before the extra level (``collisions_before_extra_level``), as logged by the trainer.
    """
    config = Config(model_name, dataset, config_file_list=config_files, config_dict=config_dict)
    model_class = get_model(config["model"])
    if not getattr(model_class, "is_generative", False):
        raise ValueError(f"{model_name} has no item tokenizer (not a generative model)")
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    model = model_class(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    start = time()
    trainer.fit_tokenizer(train_data, verbose=True, show_progress=False)
    elapsed = time() - start
    if save:
        trainer.save_tokenizer()
    return {
        "model": config["model"],
        "dataset": config["dataset"],
        "n_levels": int(config["n_levels"]),
        "stats": model.semantic_id_stats,
        "tokenizer_time_s": elapsed,
        "tokenizer_history": list(trainer.tokenizer_history),
        "tokenizer_checkpoint": trainer.tokenizer_file if save else None,
    }
