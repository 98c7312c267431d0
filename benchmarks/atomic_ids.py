"""Write the atomic-ID control's ``semantic_ids_file``: one level, every item its own token.

A generator trained on this table predicts the next item in one step over the whole catalogue,
as SASRec does, through the same encoder, decoder, recipe and beam search as a semantic-ID
run. Side by side with a tokenizer's run, it separates what the generator and its budget
cost from what the IDs cost (docs/RESULTS.md, "The atomic-ID control")::

    python benchmarks/atomic_ids.py --dataset Beauty --out saved/Beauty-atomic_ids.tsv
    python run_recbole_bbq.py --model=TIGER --dataset=Beauty --semantic_ids_file=saved/Beauty-atomic_ids.tsv ...

Items are read from ``<data_path>/<dataset>/<dataset>.inter`` (its ``item_id`` column) and
numbered in sorted token order, so the table does not depend on the file's row order. The
output is derived from the dataset: keep it out of the repository.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_bbq.fileio import atomic_write_text  # noqa: E402
from recbole_bbq.modules.semantic_ids import semantic_id_table  # noqa: E402


def item_tokens(inter_path: Path) -> list:
    """The distinct ``item_id`` tokens of a RecBole ``.inter`` file, sorted."""
    try:
        with open(inter_path, encoding="utf-8") as handle:
            header = handle.readline().rstrip("\n").split("\t")
            names = [field.split(":")[0] for field in header]
            if "item_id" not in names:
                sys.exit(f"{inter_path}: the header has no item_id column ({header})")
            column = names.index("item_id")
            tokens = set()
            for number, line in enumerate(handle, 2):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != len(header):
                    sys.exit(f"{inter_path}, line {number}: {len(fields)} fields, the header has {len(header)}")
                tokens.add(fields[column])
    except OSError as exc:
        sys.exit(f"{inter_path}: cannot be read ({exc.strerror})")
    if not tokens:
        sys.exit(f"{inter_path}: no interactions after the header")
    return sorted(tokens)


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data_path", default="dataset")
    p.add_argument("--out", required=True, help="where to write the TSV table")
    args = p.parse_args(argv)
    tokens = item_tokens(Path(args.data_path) / args.dataset / f"{args.dataset}.inter")
    # semantic_id_table skips row 0 (RecBole's padding item)
    codes = np.arange(-1, len(tokens), dtype=np.int64).reshape(-1, 1)
    out = atomic_write_text(args.out, semantic_id_table(["[PAD]"] + tokens, codes))
    print(f"{out}: {len(tokens)} items, one level of {len(tokens)} tokens")
    return out


if __name__ == "__main__":
    main()
