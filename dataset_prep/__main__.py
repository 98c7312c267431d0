"""``python -m dataset_prep <format> ...``"""
import sys

from .cli import main

sys.exit(main())
