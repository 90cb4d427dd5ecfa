"""Tests of the verbalizer-manipulation benchmark (``lvlm.eval``) and its entry point ``evaluate.py``."""
