"""Construction backends: the three generators (caption, question + answer, answer) and what drives them.

``base`` holds the ``Generator`` interface, the records exchanged with the pipeline and the ``BACKENDS``
registry (``get_backend`` / ``make_generator``); ``synthetic`` (offline, from scene facts) and ``llm``
(``openai`` and ``hf``, prompts in ``prompts``) register the built-in backends; ``clients`` holds the chat
clients the LLM backends send requests through. Every module of this package is imported when a backend
is first looked up, so a new backend is a module here with one ``@register_backend`` factory plus its
config file ``conf/construction/<name>.yaml``.
"""
