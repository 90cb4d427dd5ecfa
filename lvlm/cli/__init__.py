"""lvlm.cli package."""
