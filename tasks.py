#!/usr/bin/env python3
"""Set-up-free entry points; they need nothing but Python 3.9+ and the package registries.

    python3 tasks.py demo [extra args ...]   # ml-100k: BBQRec, TIGER, SASRec side by side (reduced)
    python3 tasks.py test [pytest args ...]         # the whole test suite

On first use (and whenever setup.py changes) they create ``.venv/`` and install into it:
torch (``RECBOLE_BBQ_TORCH``, default ``torch==2.13.0``), RecBole 1.2.1 without its ray pin,
and this package with its ``text`` and ``test`` extras.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
TORCH = os.environ.get("RECBOLE_BBQ_TORCH", "torch==2.13.0")
RECBOLE = "recbole==1.2.1"
DEMO_PER_MODEL = ["--set", "BBQRec:tokenizer_epochs=1", "--set", "BBQRec:tokenizer_eval_step=1",
                  "--set", "BBQRec:codebook_dim=64", "--set", "BBQRec:encoder_hidden_dims=[256]"]


def _install_fingerprint() -> str:
    return hashlib.sha256((ROOT / "setup.py").read_bytes() + TORCH.encode()).hexdigest()


def _run(*cmd) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def ensure_environment() -> None:
    if STAMP.exists() and STAMP.read_text() == _install_fingerprint():
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [PYTHON, "-m", "pip", "install", "-q"]
    _run(*pip, TORCH)
    _run(*pip, "-e", ".[text,test]")
    # last and without dependencies: its ray<=2.6.3 pin is unused and uninstallable on 3.12+,
    # and a --no-deps install skips pip's conflict check, which would print that pin (and
    # colorlog==4.7.2) as ERROR lines after every later install although nothing is wrong
    _run(*pip, "--no-deps", RECBOLE)
    STAMP.write_text(_install_fingerprint())


def demo(args) -> int:
    prepared = ROOT / "dataset" / "ml-100k" / "ml-100k.features.json"
    if not prepared.exists():
        _run(PYTHON, "-m", "dataset_prep", "ml100k", "--out", "dataset", "--no-progress")
    # BBQRec's stage-1 epochs run over the training sequences (TIGER's over the items), so
    # its share of the demo's tokenizer budget is set apart.
    cmd = [PYTHON, "run_recbole_bbq.py", "--models=BBQRec,TIGER,SASRec", "--dataset=ml-100k",
           "--config_files=properties/demo.yaml", *DEMO_PER_MODEL, "--out=results/demo", *args]
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT).returncode


def test(args) -> int:
    cmd = [PYTHON, "-m", "pytest", "-q", "tests", *args]
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT).returncode


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tasks = {"demo": demo, "test": test}
    if not argv or argv[0] not in tasks:
        print(__doc__)
        return 2
    ensure_environment()
    return tasks[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
