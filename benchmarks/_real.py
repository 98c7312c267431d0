"""What the real-batch benchmarks share: a generative model built on a prepared dataset with
a saved stage 1 loaded, and the first training batches of its loader."""
from __future__ import annotations

import torch

import recbole_bbq  # noqa: F401  (applies the RecBole compatibility fixes)
from recbole.data import create_dataset, data_preparation
from recbole_bbq.allocator import keep_freed_memory
from recbole_bbq.config import Config
from recbole_bbq.trainer import TwoStageTrainer
from recbole_bbq.utils import get_model


def build_with_tokenizer(name, dataset, config_files, tokenizer_checkpoint, with_test=False,
                         **overrides):
    """``(model, train_loader)``, plus the test loader with ``with_test``: ``name`` built on
    ``dataset`` under ``config_files`` (a comma-separated list) and ``overrides``, its stage 1
    loaded from ``tokenizer_checkpoint``, weights seeded with 0 so every variant built this
    way starts alike. Applies the ``keep_freed_memory`` key as a run does."""
    config = Config(name, dataset, config_file_list=config_files.split(","),
                    config_dict={"use_gpu": torch.cuda.is_available(), "state": "WARNING",
                                 "tokenizer_checkpoint": tokenizer_checkpoint, **overrides})
    if config["keep_freed_memory"]:
        keep_freed_memory()
    train, _, test = data_preparation(config, create_dataset(config))
    torch.manual_seed(0)
    model = get_model(name)(config, train.dataset).to(config["device"])
    TwoStageTrainer(config, model).load_tokenizer(tokenizer_checkpoint)
    return (model, train, test) if with_test else (model, train)


def set_overrides(parser, items) -> dict:
    """A benchmark's repeated ``--set key=value`` options as config overrides, parsed as the
    command line parses ``--key=value`` (YAML with RecBole's float rules); a malformed one
    stops ``parser`` with the message naming it."""
    from recbole_bbq.cli import parse_overrides
    from recbole_bbq.config import ConfigError

    try:
        return parse_overrides([f"--{item}" for item in items])
    except ConfigError as exc:
        parser.error(f"--set: {exc}")


def first_batches(train, n: int, device) -> list:
    """The loader's first ``n`` training batches, on ``device``."""
    batches = []
    for batch in train:
        batches.append(batch.to(device))
        if len(batches) == n:
            break
    return batches
