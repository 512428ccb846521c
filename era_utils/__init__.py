"""Helpers the single-file agents in ``agents/`` share (in the manner of CleanRL's ``cleanrl_utils``): environment
construction, run directories, logging, checkpoints and evaluation.

Needs the ``agents`` extra: ``pip install "era-policies[agents]"``. The ERA method itself lives in
:mod:`era_policies`, which needs only torch and numpy.
"""
