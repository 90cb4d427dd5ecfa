"""lvlm.models package."""
