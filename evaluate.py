"""Score a model on the verbalizer-manipulation benchmark: ``python evaluate.py [overrides]``."""

from lvlm.cli.evaluate import main

if __name__ == "__main__":
    main()
