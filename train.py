"""Train an LVLM: ``python train.py [overrides]`` (see ``python train.py --help``)."""

from lvlm.cli.train import main

if __name__ == "__main__":
    main()
