"""Export a trained LVLM (merged LLM + tokenizer, projector, vision config, card): ``python export.py``."""

from lvlm.export.cli import main

if __name__ == "__main__":
    main()
