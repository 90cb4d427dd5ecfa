"""Tests of lvlm.models: preset fidelity (towers, LoRA) on tiny stand-ins."""
