"""lvlm.training package."""
