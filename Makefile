# Set-up in one command on a machine with Python >= 3.10, git and make (Linux, macOS):
#
#   make demo   create .venv, install everything, train PPO-ERA on HalfCheetah-v5 (the README's quick start)
#   make test   create .venv, install everything, run the tests (the README's test command)
#
# Variables (make demo VAR=value): PYTHON creates the environment; VENV is its folder; TORCH_INDEX is pip's option for
# torch: CPU-only wheels by default (small), empty for PyPI's default build (CUDA on Linux); TORCH pins a version.
# torch is installed before the project, so that the extras that depend on it do not pull another build.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
TORCH_INDEX ?= --index-url https://download.pytorch.org/whl/cpu
VENV_PYTHON := $(VENV)/bin/python

.PHONY: install demo test

install: $(VENV)/.installed

# Reinstalls when pyproject.toml changes; the stamp is written only after every step succeeded.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --upgrade pip
	$(VENV_PYTHON) -m pip install $(TORCH_INDEX) "$(TORCH)"
	$(VENV_PYTHON) -m pip install -e ".[all]"
	touch $@

demo: install
	$(VENV_PYTHON) agents/ppo_era.py --env-id HalfCheetah-v5 --total-timesteps 60000 --eval-every 20000

test: install
	$(VENV_PYTHON) -m pytest -n 2
