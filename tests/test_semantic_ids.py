import numpy as np
import pytest

from recbole_bbq.modules.semantic_ids import (
    SemanticIDTableError,
    append_disambiguation_level,
    build_semantic_ids,
    codebook_utilisation,
    collision_stats,
    read_semantic_id_table,
    semantic_id_table,
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


def test_semantic_id_table_round_trips_through_its_reader(tmp_path):
    codes = np.array([[-1, -1], [3, 0], [1, 7], [3, 2]])
    path = tmp_path / "ids.tsv"
    path.write_text(semantic_id_table(["[PAD]", "a", "b", "c"], codes))
    tokens, read = read_semantic_id_table(path)
    assert tokens == ["a", "b", "c"]
    np.testing.assert_array_equal(read, codes[1:])


@pytest.mark.parametrize("text, message", [
    ("item\tlevel_1\na\t1\n", "first line must be the header"),
    ("item_id\tlevel_1\tlevel_2\na\t1\t2\nb\t1\n", r"line 3: 1 codes, the header has 2"),
    ("item_id\tlevel_1\na\t1\na\t2\n", r"line 3: item 'a' already has an ID \(line 2\)"),
    ("item_id\tlevel_1\na\t1\nb\tx\n", r"line 3: item 'b' has a code that is not an integer"),
    ("item_id\tlevel_1\na\t-2\n", r"line 2: item 'a' has a negative code"),
    ("item_id\tlevel_1\n", "no item rows"),
])
def test_semantic_id_table_reader_names_the_line_at_fault(tmp_path, text, message):
    path = tmp_path / "ids.tsv"
    path.write_text(text)
    with pytest.raises(SemanticIDTableError, match=message):
        read_semantic_id_table(path)
    with pytest.raises(SemanticIDTableError, match="cannot be read"):
        read_semantic_id_table(tmp_path / "absent.tsv")
