"""How a model's answers are obtained: the scorer registry and cached entry point (``scorers``), greedy
generation (``generate``) with its answer parser (``parsing``), the log-likelihood diagnostic
(``loglik``), shared batching (``batching``) and the prediction cache (``cache``). Nothing is
re-exported."""
