"""Item 4: the project's own log is on — ``lvlm.*`` at INFO in the run's log file (Hydra's job log),
WARNING and above on stderr — while third-party loggers stay quiet by name."""

from __future__ import annotations

import logging
import re

import pytest

from lvlm.utils.runtime import apply_offline_defaults
from tests.helpers.broken_files import record, write_png, write_records
from tests.helpers.checkpoints import save_checkpoint, tiny_module
from tests.helpers.cli import run_cli


def test_offline_defaults_keep_project_info_and_quiet_third_party(tmp_path):
    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    console, logfile = logging.StreamHandler(), logging.FileHandler(tmp_path / "job.log")
    root.handlers = [console, logfile]
    root.setLevel(logging.INFO)
    try:
        apply_offline_defaults()
        assert logging.getLogger("lvlm.train").isEnabledFor(logging.INFO)
        assert root.isEnabledFor(logging.INFO)  # the root logger is not switched off
        assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
        assert console.level == logging.WARNING and logfile.level <= logging.INFO
    finally:
        root.handlers, root.level = old_handlers, old_level
        logfile.close()


@pytest.mark.slow
def test_train_py_logs_skips_and_init_from_counts(tmp_path, tiny_model_cfg):
    write_png(tmp_path / "ok.png")
    records = [record(f"g{i}", image="ok.png") for i in range(8)] + [record("bad", image="gone.png")]
    data = write_records(tmp_path / "train.json", records)
    stage1 = save_checkpoint(tiny_module(tiny_model_cfg, "pretrain"), tmp_path / "stage1.ckpt")
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py", "data=llava_instruct", f"data.train_json={data}", f"data.image_root={tmp_path}",
        "data.on_error=skip", "data.num_workers=0", "data.batch_size=4", "data.val_fraction=0",
        "trainer.max_steps=1", "trainer.max_epochs=-1", "logger=none", "~callbacks.progress",
        f"init_from={stage1}", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    log_file = (run_dir / "train.log").read_text()
    warning = "skipped 1 bad record(s) (image file not found: 1)"
    assert warning in result.stderr and warning in log_file
    assert re.search(r"init_from .*stage1\.ckpt: loaded 2 of the \d+ tensors this stage trains", log_file)
    assert "data: 8 train / 0 val samples" in log_file  # INFO: in the file ...
    assert "data: 8 train" not in result.stderr + result.stdout  # ... not on the console
