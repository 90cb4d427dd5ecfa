"""Paper-scale fidelity of presets and recipes, checked on resolved configs and tiny stand-ins."""
