"""lvlm.utils package."""
