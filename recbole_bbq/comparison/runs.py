"""The cached, resumable runs of a side-by-side comparison (:class:`Benchmark`)."""
from __future__ import annotations

import hashlib
import json
import os
from logging import getLogger
from time import time
from typing import Dict, List

from recbole_bbq.comparison.presets import RunSpec
from recbole_bbq.config import ConfigError
from recbole_bbq.fileio import (atomic_write_json, config_differences, file_sha256, recorded_value,
                                to_plain)

# Keys that may differ between an adopted run and this benchmark: they say where a run wrote
# its files, how it was resumed or how fast it ran, not what it computed (a resumed run
# continues exactly where its checkpoint stopped; length_buckets gives the same loss and
# scores for any value, which the tests check).
ADOPT_IGNORED_KEYS = {"checkpoint_dir", "results_dir", "device", "gpu_id", "dataset_save_path",
                      "dataloaders_save_path", "show_progress", "state", "use_gpu",
                      "resume_checkpoint", "length_buckets"}

# overrides naming a file whose contents a run depends on (the cache keys them by content)
INPUT_FILE_KEYS = ("tokenizer_checkpoint", "semantic_ids_file", "letter_cf_checkpoint")


class MissingRunError(ConfigError):
    """A run the benchmark needs is neither adopted nor cached, and training is off."""


class Benchmark:
    """Runs (cached) and write-ups for one dataset; see the module docstring."""

    def __init__(self, dataset: str, out_dir: str, config_files=None, common=None,
                 per_model=None, seeds=None, budget=None, command: str = "",
                 model_config_files=None, no_training: bool = False, seed_model: str = None):
        """``seeds``: empty runs the one seed ``seed_model``'s configuration gives."""
        self.dataset = dataset
        self.out_dir = out_dir
        self.config_files = list(config_files or [])
        # extra YAML files for one model (e.g. SASRec's own recipe), read after the common ones
        self.model_config_files = {m: list(f) for m, f in (model_config_files or {}).items()}
        self.common = dict(common or {})
        self.per_model = dict(per_model or {})
        self.budget = {k: v for k, v in (budget or {}).items() if v is not None}
        self.command = command
        self.seeds = list(seeds or [])
        self.logger = getLogger()
        self.trained, self.cached = [], []
        # rebuilding tables from records must never start hours of training by accident
        self.no_training = bool(no_training)
        self.keys_added_since = {}  # adopted results file -> config keys newer than its run
        # adopted results file -> input files it read that are not on this machine, taken on
        # the SHA-256 its record keeps (a later session on a new machine rebuilds the tables)
        self.inputs_taken_on_record = {}
        # input file's real path -> SHA-256 (see _sha256), or the adopted record's for a file
        # absent here (see _check_input_file)
        self._digests = {}
        if not self.seeds and seed_model is not None:
            self.seeds = [int(self._config_value(seed_model, "seed"))]

    # ------------------------------------------------------------------ configuration
    def files_for(self, model: str, label: str = None) -> List[str]:
        """The common config files, then the ones given for this model (or run label)."""
        extra = self.model_config_files.get(model, [])
        if label is not None and label != model:
            extra = extra + self.model_config_files.get(label, [])
        return self.config_files + extra

    def _config(self, model: str, overrides: Dict, label: str = None):
        from recbole_bbq.config import Config

        return Config(model, self.dataset, config_file_list=self.files_for(model, label) or None,
                      config_dict=overrides)

    def _config_value(self, model, key):
        return self._config(model, dict(self.common))[key]

    def overrides_for(self, spec: RunSpec, seed: int) -> Dict:
        # widest scope first: all runs, the model, its label, then the same two at this seed
        scopes = [spec.model, spec.label, f"{spec.model}@{seed}", f"{spec.label}@{seed}"]
        overrides = dict(self.common)
        for scope in dict.fromkeys(scopes):
            overrides.update(self.per_model.get(scope, {}))
        overrides = {**overrides, **spec.overrides, "seed": seed}
        caps = {"epochs": self.budget.get("epochs"),
                "tokenizer_epochs": self.budget.get("tokenizer_epochs")}
        if any(v is not None for v in caps.values()):
            resolved = self._config(spec.model, overrides, spec.label)
            for key, cap in caps.items():
                if cap is not None and resolved[key] is not None:
                    overrides[key] = min(int(resolved[key]), int(cap))
        if self.budget.get("minutes") is not None:
            overrides["time_budget_minutes"] = self.budget["minutes"]
        return overrides

    def run_key(self, kind: str, spec: RunSpec, seed: int, overrides: Dict) -> str:
        """The cache key of a run: its kind, model, dataset, seed, the config files' contents,
        the overrides, and the contents of the input files the overrides name (a stage 1 or
        a semantic-ID table rewritten under the same path is another run). A file absent here
        that an adopted run's record vouches for is keyed by the record's SHA-256, so the key
        is the one a machine holding the file computes."""
        files = []
        for path in self.files_for(spec.model, spec.label):
            with open(path, encoding="utf-8") as fh:
                files.append(fh.read())
        inputs = {key: self._sha256(overrides[key]) for key in INPUT_FILE_KEYS
                  if isinstance(overrides.get(key), str)
                  and (os.path.isfile(overrides[key]) or os.path.realpath(overrides[key]) in self._digests)}
        payload = json.dumps({"kind": kind, "model": spec.model, "dataset": self.dataset,
                              "seed": seed, "config_files": files, "overrides": overrides,
                              **({"input_files": inputs} if inputs else {})},
                             sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:12]

    def _cache_path(self, kind: str, spec: RunSpec, seed: int, key: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in spec.label)
        return os.path.join(self.out_dir, "runs", f"{kind}-{safe}-seed{seed}-{key}.json")

    def _cached_or_run(self, kind: str, spec: RunSpec, seed: int, run_fn):
        overrides = self.overrides_for(spec, seed)
        key = self.run_key(kind, spec, seed, overrides)
        path = self._cache_path(kind, spec, seed, key)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
            self.cached.append(path)
            self.logger.info(f"benchmark: {spec.label} seed {seed} from cache {path}")
            return record
        if self.no_training:
            raise MissingRunError(
                f"--no_training: no adopted or cached {kind} of {spec.label} at seed {seed} "
                f"(looked for {path}); pass its results file with --adopt, or drop "
                f"--no_training to train it"
            )
        self.logger.info(f"benchmark: training {spec.label} seed {seed}")
        start = time()
        result = run_fn(spec, overrides)
        record = {"label": spec.label, "model": spec.model, "seed": seed, "key": key,
                  "overrides": overrides, "wall_time_s": time() - start, "result": result}
        atomic_write_json(path, record)
        self.trained.append(path)
        return record

    def adopt(self, paths: List[str]) -> List[str]:
        """Take finished ``run_recbole_bbq.py`` results into the cache, after checking that
        each one's recorded config equals what this benchmark would run (every key except
        machine-specific ones such as output folders and the device)."""
        adopted = []
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                result = json.load(fh)
            model, seed = result.get("model"), result.get("seed")
            if "config" not in result or "test_result" not in result:
                raise ConfigError(f"--adopt {path}: not a run_recbole_bbq results file")
            if result.get("dataset") != self.dataset or seed not in self.seeds:
                raise ConfigError(
                    f"--adopt {path}: dataset {result.get('dataset')!r} seed {seed} is not part "
                    f"of this benchmark (dataset {self.dataset!r}, seeds {self.seeds})"
                )
            spec = RunSpec(model, model)
            overrides = self.overrides_for(spec, seed)
            expected = to_plain(self._config(model, overrides).final_config_dict)
            stored = result["config"]
            # keys that did not exist when the run ran came with later code; they are listed
            # in the record (and the table), and checked against the behaviour they stand for
            differ, newer = config_differences(stored, expected,
                                               ignore=ADOPT_IGNORED_KEYS.__contains__)
            # the same input files the run cache keys by content (the table's checksum sits
            # with the semantic-ID statistics, the others at the record's top level)
            recorded = {"semantic_ids_file": (result.get("semantic_ids") or {}).get("semantic_ids_file_sha256")}
            for key in INPUT_FILE_KEYS:
                self._check_input_file(path, key, expected.get(key),
                                       recorded.get(key, result.get(f"{key}_sha256")), differ)
            if differ:
                detail = ", ".join(
                    f"{k}: ran {recorded_value(stored, k)!r}"
                    f"{' (before the key existed)' if k in newer else ''}, expected {expected.get(k)!r}"
                    for k in differ[:8])
                raise ConfigError(f"--adopt {path}: its config differs from this benchmark's "
                                  f"{model} run in {len(differ)} keys ({detail})")
            key = self.run_key("run", spec, seed, overrides)
            record = {"label": model, "model": model, "seed": seed, "key": key,
                      "overrides": overrides, "adopted_from": path, "keys_added_since": newer,
                      "wall_time_s": result.get("train_time_s", 0) + result.get("test_time_s", 0),
                      "result": result}
            atomic_write_json(self._cache_path("run", spec, seed, key), record)
            adopted.append(path)
            if newer:
                self.keys_added_since[path] = newer
        return adopted

    def _check_input_file(self, path: str, key: str, expected, recorded_sha256, differ: List[str]) -> None:
        """An input file a recorded run read (its semantic-ID table, its stage 1, LETTER's
        collaborative checkpoint) is checked by content: the record keeps its SHA-256, so the
        same file moved since is taken (``key`` leaves ``differ``), and another file under the
        run's own path is refused. A file that is not on this machine (saved stage 1s stay on
        the machine that made them) is accepted unchecked when the path is the run's own, on
        the record's SHA-256, which then stands for the file in the run cache's key, and is
        listed in the report as such; under another path it is refused, as there is nothing
        to compare, and so is a second adopted run whose record names another SHA-256 for the
        same absent path."""
        if not expected or not recorded_sha256:
            return  # no file expected, or a record that predates the checksum: paths only
        if not os.path.isfile(expected):
            if key in differ:
                raise ConfigError(f"--adopt {path}: {key} {expected} does not exist and the run "
                                  f"read another path, so the two cannot be compared by content")
            real = os.path.realpath(expected)
            if self._digests.setdefault(real, recorded_sha256) != recorded_sha256:
                raise ConfigError(f"--adopt {path}: {key} {expected} does not exist here, and "
                                  f"another adopted run read a different file under that path "
                                  f"(SHA-256 {self._digests[real][:12]}… against "
                                  f"{recorded_sha256[:12]}…)")
            self.inputs_taken_on_record.setdefault(path, []).append(
                f"{key} {expected} (SHA-256 {recorded_sha256[:12]}…)")
            return
        same = self._sha256(expected) == recorded_sha256
        if key in differ and same:
            differ.remove(key)
        elif key not in differ and not same:
            raise ConfigError(f"--adopt {path}: {key} {expected} is not the file the run read "
                              f"(its SHA-256 differs from the record's)")

    def _sha256(self, path: str) -> str:
        """An input file's SHA-256, read once per benchmark: adoption checks a stage 1 by
        content, then the run cache keys the run by it twice (on adoption and on lookup), and
        a stage 1 can be hundreds of megabytes. Input files are not rewritten while one
        comparison runs (runs write their stage 1s under new names)."""
        real = os.path.realpath(path)
        if real not in self._digests:
            self._digests[real] = file_sha256(real)
        return self._digests[real]

    # ------------------------------------------------------------------ run kinds
    def _train_and_test(self, spec: RunSpec, overrides: Dict) -> Dict:
        from recbole_bbq.quick_start import run_recbole_bbq

        overrides = {"results_dir": os.path.join(self.out_dir, "runs", "raw"), **overrides}
        return run_recbole_bbq(spec.model, self.dataset,
                               self.files_for(spec.model, spec.label) or None, overrides)

    def compare(self, specs: List[RunSpec]) -> List[Dict]:
        return [self._cached_or_run("run", spec, seed, self._train_and_test)
                for spec in specs for seed in self.seeds]

    def collisions(self, models: List[str], levels: List[int]) -> List[Dict]:
        from recbole_bbq.quick_start import train_tokenizer_only

        def run(spec, overrides):
            return train_tokenizer_only(spec.model, self.dataset,
                                        self.files_for(spec.model) or None, overrides, save=True)

        records = []
        for model in models:
            for level in levels:
                extra = {"n_levels": level}
                if model == "LETTER" and "sinkhorn_epsilons" not in self.per_model.get(model, {}):
                    extra["sinkhorn_epsilons"] = 0.003  # the last level, whatever L is
                spec = RunSpec(f"{model}[L={level}]", model, extra)
                records += [self._cached_or_run("tokenizer", spec, seed, run) for seed in self.seeds]
        return records

    def speed(self, models: List[str], beams: List[int], n_users: int) -> List[Dict]:
        from recbole_bbq.comparison.speed import inference_speed

        records = []
        for model in models:
            spec = RunSpec(model, model)
            for seed in self.seeds:
                trained = self._cached_or_run("run", spec, seed, self._train_and_test)
                checkpoint = trained["result"]["checkpoint"]

                def run(spec_, overrides, checkpoint=checkpoint):
                    # the speed_* keys only tell cached speed runs apart; no model reads them
                    config = {k: v for k, v in overrides.items() if not k.startswith("speed_")}
                    return inference_speed(spec_.model, self.dataset,
                                           self.files_for(spec_.model) or None, config,
                                           checkpoint, beams, n_users)

                records.append(self._cached_or_run("speed", RunSpec(f"{model}[speed]", model,
                                                                     {"speed_beams": beams,
                                                                      "speed_users": n_users}),
                                                   seed, run))
        return records
