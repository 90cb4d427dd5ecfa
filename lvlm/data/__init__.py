"""lvlm.data package."""
