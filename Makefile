# Two set-up-free targets: `make demo` and `make test` create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RECBOLE := recbole==1.2.1
# torch 2.13 is what the project is developed and tested on; a newer torch also works.
TORCH := torch==2.13.0

.PHONY: demo test install clean-venv

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q --no-deps "$(RECBOLE)"
	$(PY) -m pip install -q -e ".[text,test]"
	touch $(STAMP)

install: $(STAMP)

# The main job on a default that ships with a dependency: RecBole's bundled ml-100k,
# prepared with offline MiniLM title+genre features, TIGER trained (both stages) and tested.
demo: $(STAMP)
	$(PY) -m dataset_prep ml100k --out dataset
	$(PY) run_recbole_bbq.py --model=TIGER --dataset=ml-100k --config_files=properties/demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
