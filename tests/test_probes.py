"""Probes in benchmarks/: the code-lift probe's lift must tell a table whose codes follow what
users buy together from one whose codes do not; the beam-search-error probe must split misses
into model and search misses as the model's exact ranking does."""
from __future__ import annotations

import collections
import importlib.util
import json
from pathlib import Path

import itertools

import numpy as np
import pytest
import torch

from recbole_bbq.modules.beam_search import SemanticIDTrie
from recbole_bbq.modules.generator import SemanticIDGenerator
from recbole_bbq.modules.semantic_ids import read_semantic_id_table, semantic_id_table

from conftest import N_CLUSTERS, N_ITEMS

ROOT = Path(__file__).resolve().parents[1]


def _probe_module(name="probe_code_lift"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
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


class _TinyGenerativeModel:
    """What probe_beam_search_error reads of a generative model: a random generator over 29
    items with distinct 3-level IDs, one length bucket, no extra attention inputs."""

    def __init__(self):
        torch.manual_seed(0)
        self.generator = SemanticIDGenerator([4, 3, 3], max_history=4, d_model=32, n_heads=2, d_head=16,
                                             d_ff=64, n_enc_layers=1, n_dec_layers=1, init_std=0.3)
        ids = torch.tensor(list(itertools.product(range(4), range(3), range(3)))[:29])
        self.item_codes = torch.cat([torch.full((1, 3), -1), ids])  # item 0: padding
        self.trie = SemanticIDTrie(self.item_codes)
        self.n_items = len(self.item_codes)

    def eval(self):
        self.generator.eval()

    def generator_attention_kwargs(self, seq):
        return {}

    def _length_buckets(self, interaction):
        seq = interaction["seq"]
        yield torch.arange(len(seq)), seq, self.item_codes[seq], seq > 0

    @torch.no_grad()
    def exact_top(self, seq, k):
        """Every item's teacher-forced log p(ID | history), the k best per user."""
        items = torch.arange(1, self.n_items)
        rows = seq.repeat_interleave(len(items), 0)
        lp = self.generator.target_log_prob(self.item_codes[rows], rows > 0,
                                            self.item_codes[items.repeat(len(seq))])
        return items[lp.view(len(seq), -1).topk(k, dim=1).indices]


def test_beam_search_error_probe_splits_misses_as_the_exact_ranking_does():
    probe = _probe_module("probe_beam_search_error")
    model = _TinyGenerativeModel()
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(1, 30, (200, 4), generator=g)
    seq[::3, :2] = 0  # shorter histories
    # targets the model ranks second to fifth, where a greedy search loses some
    target = model.exact_top(seq, 5)[torch.arange(200), torch.randint(1, 5, (200,), generator=g)]
    data = [({"seq": seq[:120]}, None, None, target[:120]), ({"seq": seq[120:]}, None, None, target[120:])]
    k = 2
    report = probe.probe_split(model, data, beams=[k, 29], topk=k)
    assert report["users"] == 200
    exact_hits = int((model.exact_top(seq, k) == target[:, None]).any(1).sum()) / 200
    exhaustive, narrow = report["beam_29"], report[f"beam_{k}"]
    # a beam as wide as the catalogue is the exact ranking: no search misses
    assert exhaustive["search_miss_share"] == 0
    assert abs(exhaustive[f"recall@{k}"] - exact_hits) < 1e-9
    for beam in (exhaustive, narrow):
        assert abs(beam[f"recall@{k}"] + beam["model_miss_share"] + beam["search_miss_share"] - 1) < 1e-9
    # a greedy-width beam prunes some targets the model ranks in its top k, and its search
    # misses bound the exact ranking's hits (pruning a better ID can also promote a target
    # into the top k, so the narrow beam's own recall may lie on either side)
    assert narrow["search_miss_share"] > 0
    assert narrow[f"recall@{k}_if_every_search_miss_were_a_hit"] >= exact_hits - 1e-9
    # certified hits bound them from below; with nothing pruned every hit is certified
    assert narrow[f"recall@{k}_certified"] <= exact_hits + 1e-9
    assert narrow[f"recall@{k}_certified"] < narrow[f"recall@{k}"]
    assert exhaustive[f"recall@{k}_certified"] == exhaustive[f"recall@{k}"]


def test_atomic_ids_give_every_item_of_the_dataset_its_own_token(tmp_path, synthetic_data_path):
    out = _probe_module("atomic_ids").main(
        ["--dataset", "synth", "--data_path", str(synthetic_data_path), "--out", str(tmp_path / "ids.tsv")])
    tokens, codes = read_semantic_id_table(out)
    inter = (synthetic_data_path / "synth" / "synth.inter").read_text().splitlines()[1:]
    assert tokens == sorted({line.split("\t")[1] for line in inter})
    assert codes.shape == (len(tokens), 1)
    assert sorted(codes[:, 0].tolist()) == list(range(len(tokens)))


@pytest.mark.parametrize("inter, message", [
    ("user_id:token\titem:token\nu0\ti0\n", r"bad\.inter: the header has no item_id column"),
    ("user_id:token\titem_id:token\nu0\ti1\nu1\n", r"bad\.inter, line 3: 1 fields, the header has 2"),
])
def test_atomic_ids_name_the_file_and_line_at_fault(tmp_path, inter, message):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.inter").write_text(inter)
    with pytest.raises(SystemExit, match=message):
        _probe_module("atomic_ids").main(
            ["--dataset", "bad", "--data_path", str(tmp_path), "--out", str(tmp_path / "ids.tsv")])
    assert not (tmp_path / "ids.tsv").exists()


def test_target_popularity_probe_reports_what_the_top_lists_hold():
    """score(recommended=...) collects each user's top items (padding and unfilled slots
    as item 0, cut to ``users``) and recommended_popularity counts only real items."""
    probe = _probe_module("probe_target_popularity")

    class Fixed:  # full_sort_predict over items 0..5, two users per batch
        def __init__(self, rows):
            self.rows = rows

        def full_sort_predict(self, batch):
            return self.rows[batch].clone()

    inf = float("inf")
    scores = torch.tensor([[9.0, 5, 4, 3, -inf, -inf],   # only three real items scored
                           [9.0, 1, 2, 3, 4, 5],
                           [9.0, 5, 4, 3, 2, 1]])
    batches = [(torch.tensor([0, 1]), None, None, torch.tensor([1, 2])),
               (torch.tensor([2]), None, None, torch.tensor([5]))]
    recommended = []
    hits, ndcg, targets = probe.score(Fixed(scores), batches, topk=4, users=2,
                                      recommended=recommended)
    assert hits.tolist() == [True, True] and targets.tolist() == [1, 2]
    assert len(recommended) == 1
    assert recommended[0].tolist() == [[1, 2, 3, 0], [5, 4, 3, 2]]  # padding item 0 never ranks
    counts = np.array([0, 60, 3, 10, 100, 1])
    report = probe.recommended_popularity(recommended[0].numpy(), counts)
    assert report == {"median_train_count": 10.0, "share_over_50": pytest.approx(2 / 7),
                      "share_at_most_5": pytest.approx(3 / 7), "distinct_items": 5}


def test_level_normalisation_probe_compares_level_one_with_the_atomic_groups(monkeypatch):
    """Level 1 against the atomic control: a private token is compared with its item's
    probability, a shared one with the probability summed over the items sharing it."""
    from types import SimpleNamespace

    probe = _probe_module("probe_level_normalisation")
    # items 1..4; level-1 tokens: item 1 -> 0 (private), items 2, 3 -> 1 (shared), item 4 -> 2
    codes = torch.tensor([[-1, -1], [0, 0], [1, 0], [1, 1], [2, 0]])
    model = SimpleNamespace(item_codes=codes, generator=SimpleNamespace(level_sizes=[3, 2]))
    atomic = SimpleNamespace(item_codes=torch.tensor([[-1], [3], [2], [1], [0]]),
                             generator=SimpleNamespace(level_sizes=[4]))
    targets = torch.tensor([1, 2])  # one private target, one shared
    mine = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
    # the control's probabilities by its own token: item 1 = token 3, 2 = 2, 3 = 1, 4 = 0
    theirs = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.25, 0.25, 0.1]]))
    outputs = {id(model): (mine, targets), id(atomic): (theirs, targets)}
    monkeypatch.setattr(probe, "first_level_log_probs", lambda m, batches: outputs[id(m)])
    report = probe.against_atomic(model, None, atomic, None)
    assert report["private"]["targets"] == 1 and report["shared"]["targets"] == 1
    assert report["private"]["level1_log_p"] == pytest.approx(np.log(0.5), abs=1e-4)
    assert report["private"]["atomic_group_log_p"] == pytest.approx(np.log(0.4), abs=1e-4)
    assert report["private"]["atomic_item_log_p"] == pytest.approx(np.log(0.4), abs=1e-4)
    assert report["private"]["share_above_atomic_group"] == 1.0
    assert report["shared"]["level1_log_p"] == pytest.approx(np.log(0.6), abs=1e-4)
    # items 2 and 3 together: 0.25 + 0.25
    assert report["shared"]["atomic_group_log_p"] == pytest.approx(np.log(0.5), abs=1e-4)
    assert report["shared"]["atomic_item_log_p"] == pytest.approx(np.log(0.25), abs=1e-4)
    # only private targets: the shared group reports None, not NaN
    outputs[id(model)] = (mine[:1], targets[:1])
    outputs[id(atomic)] = (theirs[:1], targets[:1])
    assert probe.against_atomic(model, None, atomic, None)["shared"] == {
        "targets": 0, "level1_log_p": None, "atomic_group_log_p": None, "atomic_item_log_p": None,
        "share_above_atomic_group": None}
    with pytest.raises(ValueError, match="other targets"):
        outputs[id(atomic)] = (theirs, torch.tensor([1, 3]))
        probe.against_atomic(model, None, atomic, None)
    with pytest.raises(ValueError, match="atomic IDs"):
        probe.against_atomic(model, None, model, None)  # a three-level run is no atomic control


def test_beam_split_phases_time_each_level_and_give_the_generator_back(monkeypatch):
    """bench_beam_split.py --phases: one encoding and one decoder step per level are timed
    per search, the search's answer is unchanged, and the generator keeps its own methods."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the benchmark's own helpers
    bench = _probe_module("bench_beam_split")
    from recbole_bbq.modules.beam_search import constrained_beam_search

    torch.manual_seed(0)
    generator = SemanticIDGenerator([4, 3, 3], max_history=4, d_model=32, n_heads=2, d_head=16,
                                    d_ff=64, n_enc_layers=1, n_dec_layers=1).eval()
    trie = SemanticIDTrie(torch.tensor(list(itertools.product(range(4), range(3), range(3)))))
    history = torch.randint(3, (5, 4, 3))
    mask = torch.ones(5, 4, dtype=torch.bool)
    expected = constrained_beam_search(generator, history, mask, trie, beam_size=6)
    seconds = collections.Counter()
    with bench.phase_timer(generator, seconds):
        got = constrained_beam_search(generator, history, mask, trie, beam_size=6)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert sorted(seconds) == ["encode the history"] + [
        f"level {level}: decoder step and logits" for level in (1, 2, 3)]
    assert all(value > 0 for value in seconds.values())
    assert "encode" not in vars(generator) and "decode_step" not in vars(generator)
