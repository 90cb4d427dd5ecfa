"""Dataset construction: building FOVIT / NoFOVIT / FOIT / NoFOIT (described in ``docs/construction.md``).

Three subpackages: ``catalogue`` owns the verifiable output-format instructions (the instruction library,
a program checker and a formatter per instruction kind); ``backends`` owns the caption / question-answer /
answer generators behind one ``Generator`` interface, the backend registry, the prompt templates and the
chat clients; ``pipeline`` owns a build end to end (inputs, resumable stages, the four datasets, their
cards; ``pipeline.build.build_datasets`` is what ``build_data.py`` runs). Construction sits above
``lvlm.data``, ``lvlm.models``, ``lvlm.errors``, ``lvlm.registry`` and ``lvlm.utils`` and may import
them; none of them imports construction.
"""
