"""Tests of ``lvlm.construction``: the instruction catalogue, chat clients, pipeline and openai backend."""
