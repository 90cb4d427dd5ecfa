"""Build the FOVIT / NoFOVIT / FOIT / NoFOIT datasets (see ``lvlm.cli.build_data``)."""

from lvlm.cli.build_data import main

if __name__ == "__main__":
    main()
