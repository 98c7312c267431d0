"""A generated item ranking must never let RecBole count a target the model did not produce."""
import numpy as np
import pytest
import torch
from recbole.evaluator import Collector, Evaluator

from recbole_bbq.modules.beam_search import SemanticIDTrie, scores_for_all_items


class _Config(dict):
    """The few config keys RecBole's Collector/Evaluator read."""

    def __init__(self, topk):
        super().__init__(
            metrics=["Recall", "NDCG"], topk=topk, metric_decimal_place=6, eval_type=None,
            device=torch.device("cpu"), repeatable=True, data_path="", dataset="x", model="m",
            eval_args={"mode": "full"},
        )
        from recbole.utils import EvaluatorType

        self["eval_type"] = EvaluatorType.RANKING

    def __getitem__(self, key):
        return self.get(key)


def recbole_metrics(scores, targets, topk):
    config = _Config(topk)
    collector, evaluator = Collector(config), Evaluator(config)
    n_users = len(targets)
    positive_u = torch.arange(n_users)
    collector.eval_batch_collect(scores, None, positive_u, torch.as_tensor(targets))
    return evaluator.evaluate(collector.get_data_struct())


def beam_scores(n_items, generated, log_probs):
    """Scores of a beam that generated items ``generated`` (one leaf per item)."""
    codes = torch.full((n_items, 2), -1)
    codes[1:, 0] = torch.arange(1, n_items) // 10
    codes[1:, 1] = torch.arange(1, n_items) % 10
    trie = SemanticIDTrie(codes)
    leaf_of_item = {}
    for leaf in range(trie.n_leaves):
        for item in trie.items_of_leaf(leaf).tolist():
            leaf_of_item[item] = leaf
    leaves = torch.tensor([[leaf_of_item[i] for i in row] for row in generated])
    return scores_for_all_items(leaves, torch.tensor(log_probs), trie, n_items)


def test_target_outside_the_beam_is_never_a_hit():
    n_items, beam = 60, 10
    generated = [list(range(1, 1 + beam)), list(range(20, 20 + beam))]
    log_probs = [sorted(-np.random.default_rng(0).random(beam) * 5, reverse=True)] * 2
    scores = beam_scores(n_items, generated, log_probs)
    assert (torch.isfinite(scores).sum(1) == beam).all()
    # targets never generated, with many -inf ties around them
    result = recbole_metrics(scores.clone(), targets=[45, 5 + 40], topk=[5, 10])
    assert result["recall@10"] == 0 and result["ndcg@10"] == 0

    # the same evaluator does count a generated target (the test can fail)
    hit = recbole_metrics(scores.clone(), targets=[1, 20], topk=[5, 10])
    assert hit["recall@10"] == 1.0


def test_generative_models_refuse_a_beam_smaller_than_topk(tmp_path, synthetic_data_path):
    from conftest import tiny_config
    from recbole_bbq.quick_start import run_recbole_bbq

    config = tiny_config(tmp_path, synthetic_data_path, beam_size=5, topk=[5, 10])
    with pytest.raises(ValueError, match="beam_size=5 is smaller than max\\(topk\\)=10"):
        run_recbole_bbq("TIGER", "synth", config_dict=config)
