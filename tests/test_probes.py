"""The code-lift probe (benchmarks/probe_code_lift.py): its lift must tell a table whose codes
follow what users buy together from one whose codes do not."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from recbole_bbq.modules.semantic_ids import semantic_id_table

from conftest import N_CLUSTERS, N_ITEMS

ROOT = Path(__file__).resolve().parents[1]


def _probe_module():
    spec = importlib.util.spec_from_file_location("probe_code_lift", ROOT / "benchmarks" / "probe_code_lift.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_table(path, codes):
    tokens = ["[PAD]"] + [f"i{i}" for i in range(N_ITEMS)]
    path.write_text(semantic_id_table(tokens, np.vstack([[-1, -1], codes])))
    return str(path)


def test_code_lift_separates_cluster_codes_from_shuffled_ones(tmp_path, synthetic_data_path):
    # the synthetic users walk inside one cluster (item % 5) 80 % of the time
    cluster = np.arange(N_ITEMS) % N_CLUSTERS
    by_cluster = np.stack([cluster, np.arange(N_ITEMS) // N_CLUSTERS], axis=1)
    shuffled = by_cluster[np.random.default_rng(0).permutation(N_ITEMS)]
    out = tmp_path / "lift.json"
    probe = _probe_module()
    probe.main([_write_table(tmp_path / "cluster.tsv", by_cluster),
                _write_table(tmp_path / "shuffled.tsv", shuffled),
                "--dataset", "synth", "--data_path", str(synthetic_data_path), "--out", str(out)])
    report = json.loads(out.read_text())
    lift = [entry["signals"]["content"][0]["lift"] for entry in report]
    assert lift[0] > 2.5, lift  # same cluster: about 0.8 against 0.2 by chance
    assert 0.5 < lift[1] < 1.5, lift
    assert report[0]["signals"]["content"][0]["codes_used"] == N_CLUSTERS

    # --config_files loads the dataset as a run would: a user filter leaves fewer pairs
    filtered = tmp_path / "filter.yaml"
    filtered.write_text('user_inter_num_interval: "[10,inf)"\n')
    probe.main([_write_table(tmp_path / "cluster.tsv", by_cluster), "--dataset", "synth",
                "--data_path", str(synthetic_data_path), "--config_files", str(filtered),
                "--out", str(out)])
    assert 0 < json.loads(out.read_text())[0]["pairs"] < report[0]["pairs"]
