"""The output-format instruction catalogue: the instructions, how to check them, how to satisfy them.

``catalog`` lists the instruction kinds (IFEval's verifiable types) with their phrasings and parameter
grids; ``instructions`` samples the seeded library of ``FormatInstruction``s from it and saves or loads it
as JSON; ``checkers`` decides whether an answer follows an instruction (``checkers.check``), and
``formatters`` builds an answer that does from plain content sentences (``formatters.apply_format``, used
by the offline synthetic backend). Checkers and formatters are registries keyed by instruction kind.
"""
