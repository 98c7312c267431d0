"""``python -m dataset_prep <format> ...`` (also the ``recbole-bbq-prepare`` console script)."""
from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from typing import Iterator, List, Optional

from .common import MODALITIES, DatasetPrepError
from .pipeline import MISSING_POLICIES, PrepOptions, plain_line
from .text_encoders import DEFAULT_TEXT_ENCODER

EXAMPLES = """examples:
  python -m dataset_prep p5 --src data/Beauty --out dataset
  python -m dataset_prep amazon2014 --src raw/ --category Beauty --kcore 5
  python -m dataset_prep mmrec --src data/baby --name baby
  python -m dataset_prep ml100k --text-encoder tfidf-svd
"""


def _csv_list(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default="dataset", help="output root; writes <out>/<name>/ (default: dataset)")
    common.add_argument("--modalities", type=_csv_list, default=None,
                        help=f"comma list from {','.join(MODALITIES)} (default: all the source has)")
    common.add_argument("--text-encoder", default=DEFAULT_TEXT_ENCODER,
                        help="all-MiniLM-L6-v2 (default, offline), a local sentence-transformers "
                             "model dir or cached hub name, or tfidf-svd[:dim]")
    common.add_argument("--text-fields", type=_csv_list, default=None,
                        help="item fields joined into the text modality, e.g. title,description "
                             "(default: title; ml100k: movie_title,release_year,class)")
    common.add_argument("--missing-features", choices=MISSING_POLICIES, default="error",
                        help="item without text/image: fail (default) or zero vector with present=False")
    common.add_argument("--kcore", type=int, default=None,
                        help="iterative k-core filter on users and items before features (default: none)")
    common.add_argument("--batch-size", type=int, default=64, help="text encoder batch size (default: 64)")
    common.add_argument("--no-progress", action="store_true", help="no encoder progress bar")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_prep",
        description="Turn public recommendation datasets into RecBole atomic files plus dense "
                    "item features per modality (text, category, image).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    common = _common_parser()
    p = sub.add_parser("amazon2014", parents=[common], help="raw Amazon 2014 reviews/meta/image files")
    p.add_argument("--src", required=True, help="folder with reviews_<Cat>_5.json.gz, meta_<Cat>.json.gz, ...")
    p.add_argument("--category", required=True, help="e.g. Beauty")
    p.add_argument("--name", default=None, help="dataset name (default: the category)")
    p = sub.add_parser("p5", parents=[common], help="P5 layout: sequential_data.txt + datamaps.json")
    p.add_argument("--src", required=True, help="folder with sequential_data.txt, datamaps.json, item metadata")
    p.add_argument("--name", default=None, help="dataset name (default: the folder name)")
    p = sub.add_parser("mmrec", parents=[common], help="MMRec layout: <name>.inter + text_feat.npy/image_feat.npy")
    p.add_argument("--src", required=True, help="folder with <name>.inter and the .npy features")
    p.add_argument("--name", required=True, help="dataset name (the .inter file's stem)")
    p = sub.add_parser("ml100k", parents=[common], help="RecBole's bundled ml-100k")
    p.add_argument("--src", default=None, help="folder with ml-100k.inter/.item (default: RecBole's bundled copy)")
    return parser


def run(args: argparse.Namespace) -> dict:
    options = PrepOptions(
        out=args.out, modalities=args.modalities, text_encoder=args.text_encoder,
        text_fields=args.text_fields, missing_features=args.missing_features, kcore=args.kcore,
        batch_size=args.batch_size, show_progress=not args.no_progress,
    )
    if args.format == "amazon2014":
        from . import amazon2014
        return amazon2014.prepare(args.src, args.category, args.name, options)
    if args.format == "p5":
        from . import p5
        return p5.prepare(args.src, args.name, options)
    if args.format == "mmrec":
        from . import mmrec
        return mmrec.prepare(args.src, args.name, options)
    from . import ml100k
    return ml100k.prepare(args.src, options)


class _StdoutHandler(logging.Handler):
    """Progress lines as they are, warnings prefixed ``warning:``, on whatever ``sys.stdout`` is
    when each line is written (so a caller's redirection is honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(plain_line(record.levelno, record.getMessage()) + "\n")
        sys.stdout.flush()


@contextmanager
def _report_to_stdout() -> Iterator[None]:
    """The pipeline's progress and warnings on standard output for one ``main`` call; the
    ``dataset_prep`` logger is left as it was found."""
    package = logging.getLogger("dataset_prep")
    handler, level, propagate = _StdoutHandler(), package.level, package.propagate
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    package.propagate = False
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        package.propagate = propagate


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI; bad input prints ``error: ...`` (no traceback) and returns 2."""
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print("error: --batch-size must be positive", file=sys.stderr)
        return 2
    try:
        with _report_to_stdout():
            run(args)
    except DatasetPrepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
