# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
# Each creates .venv if missing and installs the package (editable) with what it needs.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is a CPU build on the tutorial's machine; `make demo TORCH_SPEC=torch` takes
# whatever build pip picks for yours (on Linux with an NVIDIA GPU: a CUDA build, several GB).
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,retro,postgres
STAMP := $(VENV)/.installed-$(subst /,_,$(subst =,_,$(TORCH_SPEC)))
DEMO_LOGDIR ?= runs
DEMO_TIMESTEPS ?= 40000

.PHONY: install demo test benchmark plots tables results mutation clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# The main job: a short real training (zoo PPO, fast path) with TensorBoard logs and a gif,
# then a replay of the pretrained agent in models/.
demo: install
	$(PY) 0_setup/0.3_demo.py --timesteps $(DEMO_TIMESTEPS) --logdir $(DEMO_LOGDIR)

test: install
	$(PY) -m pytest -q

# Mutation testing (not part of `make test`: slow): mutmut changes one thing at a time in each
# module of tests/mutation.py's FAST_MODULES and reruns its tests; the survivors go to
# build/mutation/report.md. `make mutation MODULES=rlbreakout/schedules.py` runs only those.
MODULES ?=
mutation: install
	$(PY) tests/mutation.py $(MODULES) $(if $(FRESH),--fresh)

benchmark: install
	$(PY) 0_setup/0.2_benchmark.py

plots: install
	$(PY) pictures/make_plots.py

# The README tables, rewritten from the ledger in results/.
tables: install
	$(PY) pictures/make_tables.py

# The results campaign: `make results` lists the planned runs; `make results HOURS=2.5` runs
# the missing ones that fit in 2.5 hours, each into its own results/*.json (commit each).
HOURS ?=
results: install
	$(PY) pictures/campaign.py $(if $(HOURS),--hours $(HOURS),--list)

clean:
	rm -rf $(VENV) .pytest_cache
