"""Item 11 (eval part): ``eval.tasks=[]`` is a one-line error, not "all tasks"."""

from __future__ import annotations

import pytest

from lvlm.errors import ConfigError
from lvlm.eval.tasks.definitions import GROUP_CONFIG, load_eval_config, select_tasks


def test_empty_task_list_is_an_error():
    cfg = load_eval_config(["tasks=[]"], config_name=GROUP_CONFIG)
    with pytest.raises(ConfigError) as info:
        select_tasks(cfg)
    assert str(info.value).startswith("eval.tasks is empty") and "\n" not in str(info.value)


def test_unset_task_list_still_means_every_task():
    cfg = load_eval_config(["tasks=null"], config_name=GROUP_CONFIG)
    assert len(select_tasks(cfg)) == len(cfg.task_defs)
