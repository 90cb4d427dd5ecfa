"""lvlm: visual instruction tuning and instruction-following evaluation."""
