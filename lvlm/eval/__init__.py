"""lvlm.eval package."""
