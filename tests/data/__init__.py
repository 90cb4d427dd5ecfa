"""Tests of training data: tokenization fidelity and the real-vs-tiny data guard."""
