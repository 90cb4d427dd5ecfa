"""lvlm.data.construction package."""
