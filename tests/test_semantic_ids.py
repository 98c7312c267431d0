import numpy as np

from recbole_bbq.modules.semantic_ids import (
    append_disambiguation_level,
    build_semantic_ids,
    codebook_utilisation,
    collision_stats,
)


def test_collision_stats_counts_items_sharing_an_id():
    codes = np.array([[0, 1], [0, 1], [0, 2], [3, 3], [0, 1]])
    stats = collision_stats(codes)
    assert stats["colliding_items"] == 3
    assert stats["max_group_size"] == 3
    assert stats["n_unique_ids"] == 3


def test_disambiguation_level_makes_ids_unique_and_numbers_groups():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(200, 2))  # only 9 distinct IDs: heavy collisions
    resolved = append_disambiguation_level(codes)
    assert resolved.shape == (200, 3)
    assert len(np.unique(resolved, axis=0)) == 200
    assert np.array_equal(resolved[:, :2], codes)
    for prefix in np.unique(codes, axis=0):
        group = resolved[(codes == prefix).all(1), 2]
        assert sorted(group.tolist()) == list(range(len(group)))


def test_build_semantic_ids_adds_extra_level_only_when_needed():
    unique = np.array([[0, 0], [0, 1], [1, 0]])
    sem = build_semantic_ids(unique, [2, 2])
    assert not sem.stats["extra_level"] and sem.level_sizes == [2, 2]
    assert sem.codes.shape == (4, 2) and (sem.codes[0] == -1).all()  # padding row

    colliding = np.array([[0, 0], [0, 0], [0, 0], [1, 1]])
    sem = build_semantic_ids(colliding, [2, 2])
    assert sem.stats["extra_level"]
    assert sem.level_sizes == [2, 2, 3]
    assert sem.stats["collisions_before_extra_level"]["colliding_items"] == 3
    assert sem.stats["collisions_after"]["colliding_items"] == 0

    kept = build_semantic_ids(colliding, [2, 2], resolve_collisions=False)
    assert kept.level_sizes == [2, 2] and kept.stats["collisions_after"]["colliding_items"] == 3


def test_codebook_utilisation_per_level():
    codes = np.array([[0, 0], [1, 0], [2, 0], [3, 1]])
    assert codebook_utilisation(codes, [8, 4]) == [0.5, 0.5]
