"""Convert the semantic IDs published with LETTER's release into a ``semantic_ids_file``.

LETTER's release (HonghuiBao2000/LETTER) ships, for Beauty, the IDs its own tokenizer gave
(``data/Beauty/Beauty.index.json``: item index -> ``["<a_183>", "<b_70>", ...]``) and the
user sequences it trained on (``Beauty.inter.json``: user index -> item indices, oldest
first). Its items are numbered as in P5's ``sequential_data.txt`` minus one; this script
checks that on every sequence (P5's files read by ``dataset_prep.p5``) before it trusts the
mapping, then writes ``item_id level_1 .. level_L`` rows keyed by ASIN (via P5's
``datamaps.json``).

Training our generator on these IDs (``--semantic_ids_file``) separates "our tokenizer" from
"our generator and budget" when our LETTER or TIGER lands below the published numbers::

    python benchmarks/letter_release_ids.py --release <LETTER checkout>/data/Beauty \
        --p5 <P5 Beauty folder> --out saved/letter-release-Beauty-semantic_ids.tsv

The output is derived from the release and the dataset: keep it out of the repository.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_prep.common import DatasetPrepError  # noqa: E402
from dataset_prep.p5 import read_datamaps, read_sequences  # noqa: E402
from recbole_bbq.fileio import atomic_write_text  # noqa: E402
from recbole_bbq.modules.semantic_ids import semantic_id_table  # noqa: E402

TOKEN = re.compile(r"<([a-z])_(\d+)>")


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        sys.exit(f"{path}: cannot read as JSON ({exc})")


def release_codes(index: dict, path: Path) -> dict:
    """Release item index (int) -> codes, checking the ``<a_N>, <b_N>, ...`` level letters."""
    codes = {}
    for key, tokens in index.items():
        parsed = [TOKEN.fullmatch(t) for t in tokens]
        if not all(parsed) or [m.group(1) for m in parsed] != [chr(97 + i) for i in range(len(parsed))]:
            sys.exit(f"{path}: item {key} has tokens {tokens}, expected <a_N>, <b_N>, ... in order")
        codes[int(key)] = [int(m.group(2)) for m in parsed]
    if len({len(c) for c in codes.values()}) != 1:
        sys.exit(f"{path}: items have IDs of different lengths")
    return codes


def check_alignment(inter: dict, id2user: dict, id2item: dict, sequences_path: Path) -> int:
    """Every release sequence must be P5's sequence of the same user with indices minus one,
    compared as item tokens (P5's files read by ``dataset_prep.p5``, which names any bad line)."""
    frame = read_sequences(sequences_path, id2user, id2item)
    p5 = frame.groupby("user_id", sort=False)["item_id"].apply(list).to_dict()
    if len(p5) != len(inter):
        sys.exit(f"{sequences_path} has {len(p5)} users, the release {len(inter)}: not the same data")
    for user, items in inter.items():
        p5_user = id2user.get(str(int(user) + 1))
        if p5.get(p5_user) != [id2item.get(str(i + 1)) for i in items]:
            sys.exit(f"release user {user}'s sequence is not P5 user {int(user) + 1}'s "
                     f"({p5_user}) minus one in {sequences_path}: the item numbering cannot be trusted")
    return len(p5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, required=True,
                        help="the release's data/<Dataset> folder (<name>.index.json, <name>.inter.json)")
    parser.add_argument("--p5", type=Path, required=True,
                        help="P5 folder with sequential_data.txt and datamaps.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    name = args.release.name
    index_path = args.release / f"{name}.index.json"
    codes = release_codes(read_json(index_path), index_path)
    try:
        id2user, id2item = read_datamaps(args.p5 / "datamaps.json")
        n_users = check_alignment(read_json(args.release / f"{name}.inter.json"), id2user, id2item,
                                  args.p5 / "sequential_data.txt")
    except DatasetPrepError as exc:
        sys.exit(str(exc))
    missing = [i for i in range(len(id2item)) if i not in codes]
    if missing:
        sys.exit(f"{index_path} has no ID for {len(missing)} items (first indices {missing[:5]})")
    tokens = ["[PAD]"] + [id2item[str(i + 1)] for i in range(len(id2item))]
    rows = [[-1] * len(codes[0])] + [codes[i] for i in range(len(id2item))]
    atomic_write_text(args.out, semantic_id_table(tokens, np.asarray(rows)))
    print(f"{args.out}: {len(id2item)} items, {len(codes[0])} levels; "
          f"alignment checked on {n_users} user sequences")


if __name__ == "__main__":
    main()
