"""A RecBole ``Config`` that also reads the plugin's property files.

Order (later wins), as in RecBole-GNN: RecBole's own defaults for the model and dataset, then
``properties/overall.yaml`` (the shared evaluation protocol of DESIGN section 2),
``properties/model/<Model>.yaml`` (preceded by those of the model's plugin base classes, so
``BBQRec_noMIM`` reads ``BBQRec.yaml`` first), ``properties/dataset/<dataset>.yaml``, then
the user's ``config_file_list``, ``config_dict`` and command-line values.
"""
from __future__ import annotations

import os
from pathlib import Path

from recbole_bbq import compat

compat.apply()

from recbole.config import Config as RecBoleConfig  # noqa: E402


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

    Unlike RecBole's, it never reads ``sys.argv`` itself: the quick-start parses the command
    line and passes it in ``config_dict``, so programmatic runs (tests, notebooks, the
    benchmark driver) are not affected by the host process's arguments.
    """

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
                raise KeyError("no model given: pass --model=NAME or set `model` in a config file")
        if isinstance(model, str):
            model_name, model_class = model, get_model(model)
        else:
            model_name, model_class = model.__name__, model
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise KeyError("no dataset given: pass --dataset=NAME or set `dataset`")
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
