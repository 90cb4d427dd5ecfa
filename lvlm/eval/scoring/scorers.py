"""The scorer registry and the cached scoring entry point of the verbalizer benchmark.

Every scorer has the signature ``score(model, items, *, batch_size, progress, on_batch, **settings) ->
list[Prediction]`` (same order as ``items``). Two are registered: ``generate`` (greedy short answer +
parser, the headline scorer) and ``loglikelihood`` (verbalizer ranking, diagnostic). ``run_scorer`` looks a
scorer up by name (``eval.scorer``), serves finished predictions from the on-disk cache and scores only
what is missing, appending each finished batch to the cache as it goes. A new scorer is one function with
that signature added to ``SCORERS``; its keyword-only parameters are its settings, read from the ``eval``
keys of the same name (``settings_from_config``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lvlm.errors import ConfigError
from lvlm.eval.scoring.cache import PredictionCache, prompt_hash
from lvlm.eval.scoring.generate import score_generate
from lvlm.eval.scoring.loglik import score_loglikelihood
from lvlm.eval.types import Prediction, PromptItem, ScoringModel
from lvlm.registry import Registry

Scorer = Callable[..., list[Prediction]]
SCORERS: Registry[Scorer] = Registry("scorer")
SCORERS.add("generate", score_generate)
SCORERS.add("loglikelihood", score_loglikelihood)

_RUN_ARGUMENTS = {"batch_size", "progress", "on_batch"}  # do not change predictions, so not cache keys


@dataclass(frozen=True)
class ScoreRun:
    """Predictions in item order and how many came from the cache vs. were computed now."""

    predictions: list[Prediction]
    n_cached: int
    n_computed: int
    cache_path: Path | None = None


def get_scorer(name: str) -> Scorer:
    """The scorer registered as ``name``; a miss lists the valid scorer names."""
    return SCORERS.get(name)


def resolved_settings(name: str, settings: dict[str, object]) -> dict[str, object]:
    """The scorer's decoding settings with defaults filled in; unknown settings raise ``ConfigError``."""
    parameters = inspect.signature(get_scorer(name)).parameters
    valid = {
        key: p for key, p in parameters.items() if p.kind is p.KEYWORD_ONLY and key not in _RUN_ARGUMENTS
    }
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(
            f"scorer '{name}': unknown setting(s) {', '.join(unknown)}; "
            f"valid settings: {', '.join(sorted(valid))}"
        )
    return {key: settings.get(key, parameter.default) for key, parameter in sorted(valid.items())}


def settings_from_config(name: str, eval_cfg: Mapping[str, object]) -> dict[str, object]:
    """The keys of ``eval_cfg`` that are decoding settings of scorer ``name`` (e.g. ``max_new_tokens``).

    A scorer's settings are its keyword-only parameters, so a new setting is one parameter plus its
    ``eval.<key>`` in the config; keys the scorer does not take are ignored here.
    """
    parameters = inspect.signature(get_scorer(name)).parameters
    return {
        key: eval_cfg[key]
        for key, parameter in parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and key not in _RUN_ARGUMENTS and key in eval_cfg
    }


def run_scorer(
    name: str,
    model: ScoringModel,
    items: list[PromptItem],
    *,
    batch_size: int = 8,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **settings: object,
) -> ScoreRun:
    """Score ``items`` with scorer ``name``, reusing and extending the prediction cache if given."""
    scorer = get_scorer(name)
    resolved = resolved_settings(name, settings)
    cache = PredictionCache(cache_dir, model.fingerprint, name, resolved) if cache_dir is not None else None
    keys = [prompt_hash(item) for item in items]
    found = [cache.get(key) if cache is not None else None for key in keys]
    missing = [index for index, prediction in enumerate(found) if prediction is None]

    def store(batch_indices: list[int], batch_predictions: list[Prediction]) -> None:
        if cache is not None:
            cache.append([keys[missing[i]] for i in batch_indices], batch_predictions)

    if missing:
        computed = scorer(
            model,
            [items[i] for i in missing],
            batch_size=batch_size,
            progress=progress,
            on_batch=store,
            **resolved,
        )
        for index, prediction in zip(missing, computed, strict=True):
            found[index] = prediction
    predictions = [prediction for prediction in found if prediction is not None]
    return ScoreRun(predictions, len(items) - len(missing), len(missing), cache.path if cache else None)
