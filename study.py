"""Run a whole study, resuming where it stopped: ``python study.py experiments/<name> [--dry-run]``."""

from lvlm.study.cli import main

if __name__ == "__main__":
    main()
