"""The study's log: during a run, Ray's and the trackers' log lines and Python's warnings go to the
log file, not the terminal (unless --verbose); afterwards every handler is as it was."""

import io
import logging
import warnings

import pytest
import ray  # noqa: F401 - Ray's logging configuration (its handler on the "ray" logger)

from study.run_log import messages_to

LINES = ("Trial task failed for trial x", "mlflow says something", "a library's warning")


def emit_everything() -> None:
    logging.getLogger("ray.tune.execution.tune_controller").error(LINES[0])
    logging.getLogger("mlflow.tracking").warning(LINES[1])
    warnings.warn(LINES[2], UserWarning, stacklevel=1)


@pytest.fixture
def ray_terminal():
    """What Ray's own handler prints (it writes to the stderr of the time Ray was imported)."""
    handlers = [h for h in logging.getLogger("ray").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "Ray configures a handler on its logger"
    buffer, streams = io.StringIO(), [handler.setStream(io.StringIO()) for handler in handlers]
    for handler in handlers:
        handler.setStream(buffer)
    yield buffer
    for handler, stream in zip(handlers, streams, strict=True):
        handler.setStream(stream)


def test_ray_and_tracker_lines_and_warnings_go_to_the_log(tmp_path, capsys, ray_terminal):
    before = logging.getLogger("ray").handlers[:]
    with messages_to(tmp_path / "driver.log") as log:
        emit_everything()
    assert ray_terminal.getvalue() == "" and capsys.readouterr().err == ""
    text = log.read_text()
    assert all(line in text for line in LINES), text
    assert logging.getLogger("ray").handlers == before, "Ray's handler is back"
    logging.getLogger("ray.tune").error("after the run")
    assert "after the run" in ray_terminal.getvalue(), "control: outside the block Ray prints there"


def test_verbose_keeps_them_on_the_terminal_too(tmp_path, capsys, ray_terminal):
    with messages_to(tmp_path / "driver.log", verbose=True) as log:
        emit_everything()
    assert LINES[0] in ray_terminal.getvalue() and LINES[2] in capsys.readouterr().err
    assert all(line in log.read_text() for line in LINES)
