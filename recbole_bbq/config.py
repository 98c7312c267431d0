"""A RecBole ``Config`` that also reads the plugin's property files.

Order (later wins), as in RecBole-GNN: RecBole's own defaults for the model and dataset, then
``properties/overall.yaml`` (the shared evaluation protocol, docs/DESIGN.md section 2),
``properties/model/<Model>.yaml`` (preceded by those of the model's plugin base classes, so
``BBQRec_noMIM`` reads ``BBQRec.yaml`` first), ``properties/dataset/<dataset>.yaml`` when
one exists (none ships), then the user's ``config_file_list`` and ``config_dict`` (the command
line, :mod:`recbole_bbq.cli`, hands its ``--key=value`` settings over as the latter).
"""
from __future__ import annotations

import difflib
import functools
import os
import re
from pathlib import Path

import yaml
from recbole.config import Config as RecBoleConfig

from recbole_bbq import compat  # importing the package has applied compat.apply()
from recbole_bbq.errors import ConfigError  # callers also import it from here
from recbole_bbq.modules.generator import (DECODER_STARTS, FIRST_LEVEL_EMBEDDINGS, FIRST_LEVEL_READOUTS,
                                          HISTORY_TOKENS)
from recbole_bbq.trainer.schedule import WEIGHT_DECAY_SCOPES


_KEY_READ = re.compile(r"""config\[\s*["']([A-Za-z_][A-Za-z_0-9]*)["']\s*\]""")


@functools.lru_cache(maxsize=1)
def known_config_keys() -> frozenset:
    """Every key some model or trainer can read: the keys of RecBole's and the plugin's
    property files (all models, so a budget file shared by a side-by-side run may hold
    generator keys that SASRec ignores) and the keys their code reads."""
    import recbole

    # + what the data-parallel launcher gives each process (RecBole's distributed mode)
    keys = {"model", "dataset", "extra_config_keys", "local_rank", "world_size", "offset"}
    roots = (Path(recbole.__file__).parent, Path(__file__).parent, properties_dir())
    for root in roots:
        for file in root.rglob("*.yaml"):
            try:
                content = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, OSError, UnicodeDecodeError):
                continue
            if isinstance(content, dict):
                keys.update(map(str, content))
        for file in root.rglob("*.py"):
            keys.update(_KEY_READ.findall(file.read_text(encoding="utf-8", errors="ignore")))
    return frozenset(keys)


def _closest(key: str) -> str:
    match = difflib.get_close_matches(key, known_config_keys(), n=1, cutoff=0.75)
    return f"; did you mean {match[0]!r}?" if match else ""


def properties_dir() -> Path:
    """The ``properties/`` folder: the repository's in a checkout, the packaged copy otherwise."""
    in_checkout = Path(__file__).resolve().parent.parent / "properties"
    if (in_checkout / "overall.yaml").is_file():
        return in_checkout
    from importlib.resources import files

    return Path(str(files("recbole_bbq.properties")))


def _model_property_files(root: Path, model: str, model_class) -> list:
    """``properties/model/<Name>.yaml`` of the model's base classes, then of the model.

    A variant that subclasses a plugin model (``BBQRec_noMIM(BBQRec)``) inherits the base
    model's defaults, so its own file holds only what differs.
    """
    names = [
        cls.__name__
        for cls in reversed(getattr(model_class, "__mro__", ()))
        if cls.__module__.startswith("recbole_bbq.") and cls.__name__ != model
    ]
    files = [root / "model" / f"{name}.yaml" for name in dict.fromkeys(names + [model])]
    return [f for f in files if f.is_file()]


class Config(RecBoleConfig):
    """RecBole's Config plus the plugin's models and property files.

    Unlike RecBole's, it never reads ``sys.argv`` itself: :mod:`recbole_bbq.cli` parses
    the command line and passes it in ``config_dict``, so programmatic runs (tests, notebooks, the
    benchmark driver) are not affected by the host process's arguments.
    """

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None):
        self.file_list = list(config_file_list or [])
        super().__init__(model, dataset, config_file_list, config_dict)
        self.validate()

    def _load_config_files(self, file_list):
        """RecBole's loader, with each file named in its errors."""
        merged = {}
        for file in file_list or []:
            try:
                with open(file, "r", encoding="utf-8") as handle:
                    content = yaml.load(handle.read(), Loader=self.yaml_loader)
            except FileNotFoundError:
                raise ConfigError(f"config file {file} does not exist") from None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None
            if content is None:
                continue
            if not isinstance(content, dict):
                raise ConfigError(
                    f"config file {file} must hold `key: value` lines, found a "
                    f"{type(content).__name__}"
                )
            merged.update(content)
        return merged

    def validate(self) -> None:
        """Refuse what the user set that no model reads or cannot work, before any work.

        Unknown keys (a misspelling is otherwise ignored silently) are named with the
        closest known key; ``extra_config_keys: [...]`` declares keys for your own
        extensions. Value checks: ``epochs >= 1``, ``tokenizer_epochs >= 0``, positive
        batch sizes and learning rates, ``modalities`` a list of names (a bare name is
        taken as a one-element list).
        """
        allowed = known_config_keys() | set(self.final_config_dict.get("extra_config_keys") or [])
        sources = [("the command line / config_dict", self.variable_config_dict)]
        sources += [(f"config file {f}", self._load_config_files([f]))
                    for f in (self.file_list or [])]
        for where, given in sources:
            for key in given:
                if key not in allowed:
                    raise ConfigError(
                        f"unknown configuration key {key!r} in {where}{_closest(key)} "
                        f"(keys for your own code: add them to `extra_config_keys`)"
                    )
        self._check_values()
        self._check_prepared()

    def _check_prepared(self) -> None:
        """A dataset that is not on disk is named with the commands that prepare it (RecBole
        would otherwise try to download it and, offline, end in a URLError traceback)."""
        if self.final_config_dict.get("benchmark_filename"):
            return
        folder = self.final_config_dict["data_path"]
        inter = os.path.join(folder, f"{self.dataset}.inter")
        if os.path.isfile(inter):
            return
        name = self.dataset
        raise ConfigError(
            f"dataset {name!r} is not prepared: {inter} not found. Prepare it with one of\n"
            f"  python -m dataset_prep p5 --src <folder with sequential_data.txt> --name {name} --out dataset\n"
            f"  python -m dataset_prep amazon2014 --src <folder with reviews_*_5.json.gz> --category <Category> --name {name}\n"
            f"  python -m dataset_prep mmrec --src <folder with {name}.inter and *_feat.npy> --name {name}\n"
            f"  python -m dataset_prep ml100k\n"
            f"or point --data_path at the folder that holds {name}/{name}.inter"
        )

    def _check_values(self) -> None:
        c = self.final_config_dict

        def number(key, minimum, kind=int, strict=False):
            value = c.get(key)
            if value is None:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and kind is int:
                ok = float(value).is_integer()
            if not ok or (value <= minimum if strict else value < minimum):
                bound = f"> {minimum}" if strict else f">= {minimum}"
                raise ConfigError(f"{key} must be {'an integer' if kind is int else 'a number'} "
                                  f"{bound}, got {value!r}")

        def one_of(key, allowed, described=None):
            value = c.get(key)
            if value not in (None, *allowed):
                raise ConfigError(f"{key} must be {described or ' or '.join(allowed)}, got {value!r}")

        number("epochs", 1)
        number("tokenizer_epochs", 0)
        number("train_batch_size", 1)
        number("eval_batch_size", 1)
        number("tokenizer_batch_size", 1)
        number("stopping_step", 1)
        number("warmup_steps", 0)
        number("learning_rate", 0, float, strict=True)
        number("tokenizer_learning_rate", 0, float, strict=True)
        number("nproc", 1)
        if (c.get("nproc") or 1) > 1 and c["device"].type == "cuda":
            gpus = [g for g in str(c["gpu_id"]).split(",") if g.strip()]
            if len(gpus) < c["nproc"]:
                raise ConfigError(f"nproc {c['nproc']} needs as many GPUs in gpu_id, got "
                                  f"{c['gpu_id']!r} (e.g. --gpu_id=0,1)")
        for key in ("keep_freed_memory", "tie_embeddings", "output_bias", "final_dropout",
                    "input_norm", "start_every_level"):
            if key in c and not isinstance(c[key], bool):
                raise ConfigError(f"{key} must be True or False, got {c[key]!r}")
        one_of("amp_dtype", ("bfloat16", "float16"))
        one_of("eval_amp_dtype", ("bfloat16", "float16"), "~ (float32), bfloat16 or float16")
        one_of("rq_level_reduction", ("sum", "mean"))
        one_of("decoder_start", DECODER_STARTS)
        one_of("first_level_readout", FIRST_LEVEL_READOUTS)
        one_of("history_tokens", HISTORY_TOKENS)
        one_of("first_level_embeddings", FIRST_LEVEL_EMBEDDINGS)
        if c.get("first_level_embeddings") == "items" and not c.get("tie_embeddings"):
            raise ConfigError("first_level_embeddings: items scores the first level against token "
                              "embeddings; it needs tie_embeddings: True")
        bos_start = (c.get("decoder_start") or "bos") == "bos"  # the start reads no history
        if c.get("first_level_readout") == "start" and bos_start:
            raise ConfigError("first_level_readout: start needs decoder_start: last_item; BOS "
                              "alone would score the first level the same for every user")
        if c.get("start_every_level") and bos_start:
            raise ConfigError("start_every_level: True needs decoder_start: last_item; BOS added "
                              "to every decoder position is the same for every user")
        number("n_encoder_layers", 0)
        number("n_decoder_layers", 0)
        if c.get("n_decoder_layers") == 0 and bos_start:
            raise ConfigError("n_decoder_layers: 0 needs decoder_start: last_item; from BOS alone, "
                              "with no cross-attention, the model would never read the history")
        one_of("weight_decay_scope", WEIGHT_DECAY_SCOPES)
        if c.get("tokenizer_checkpoint") and c.get("semantic_ids_file"):
            raise ConfigError("give either tokenizer_checkpoint or semantic_ids_file, not both: "
                              "each replaces stage 1")
        for key in ("modalities", "drop_signals"):
            value = c.get(key)
            if isinstance(value, str):
                c[key] = [value]
            elif value is not None and not (
                isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"{key} must be a list of modality names, got {value!r}")

    def _init_device(self):
        """RecBole's device set-up; its distributed mode (``local_rank`` set by the launcher,
        :func:`recbole_bbq.quick_start.run_recbole_bbq` with ``nproc > 1``) is NCCL-only, so
        CPU processes join a gloo group here instead."""
        import torch

        c = self.final_config_dict
        gpu_id = ",".join(map(str, c["gpu_id"])) if isinstance(c["gpu_id"], tuple) else str(c["gpu_id"])
        on_cpu = not (gpu_id and torch.cuda.is_available())  # RecBole's own device rule
        if "local_rank" not in c or not on_cpu:
            return super()._init_device()
        import torch.distributed as dist

        c["gpu_id"] = gpu_id
        if not dist.is_initialized():
            dist.init_process_group(
                backend="gloo", rank=c["local_rank"] + c["offset"], world_size=c["world_size"],
                init_method=f"tcp://{c['ip']}:{c['port']}")
        c["device"] = torch.device("cpu")
        c["single_spec"] = False
        if c["local_rank"] != 0:  # as RecBole: only rank 0 logs and shows progress
            c["state"] = "error"
            c["show_progress"] = False
            c["verbose"] = False

    def compatibility_settings(self):
        # RecBole's version reads np.float_ & co., which numpy 2 removed
        compat.patch_numpy()

    def _load_cmd_line(self):
        return {}

    def _get_model_and_dataset(self, model, dataset):
        from recbole_bbq.utils import get_model

        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise KeyError("no model given: pass model (--model=NAME) or set `model` in a config file")
        if isinstance(model, str):
            model_name, model_class = model, get_model(model)
        else:
            model_name, model_class = model.__name__, model
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise KeyError("no dataset given: pass dataset (--dataset=NAME) or set `dataset`")
        return model_name, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        root = properties_dir()
        for file in (
            root / "overall.yaml",
            *_model_property_files(root, model, model_class),
            root / "dataset" / f"{dataset}.yaml",
        ):
            if file.is_file():
                self._update_internal_config_dict(str(file))

    def _set_default_parameters(self):
        super()._set_default_parameters()
        # RecBole always points ml-100k at its bundled copy; a prepared ml-100k (with the
        # item feature files our models need) under the configured data_path takes precedence.
        if self.dataset == "ml-100k":
            base = self.external_config_dict.get(
                "data_path", self.internal_config_dict.get("data_path", "dataset/")
            )
            prepared = os.path.join(base, self.dataset)
            if os.path.isfile(os.path.join(prepared, f"{self.dataset}.inter")):
                self.final_config_dict["data_path"] = prepared
