"""The `recipes` logger: the console, the job's filter, and the `log=` of the public functions."""

import logging

from recipes import _log
from recipes import job as job_lib


def test_messages_go_to_stdout_and_warnings_to_stderr(capsys):
    _log.logger.info("a line")
    _log.logger.warning("a caveat")
    out, err = capsys.readouterr()
    assert out == "a line\n" and err == "a caveat\n"


def test_a_jobs_other_processes_say_nothing(capsys):
    try:
        job_lib.join(job_lib.Job(process_id=1, num_processes=1))  # one process: joins nothing, installs the filter
        _log.logger.info("from process 1")
        assert capsys.readouterr().out == ""
        job_lib.join(job_lib.Job())  # process 0 again: the filter is replaced, not added
        _log.logger.info("from process 0")
        assert capsys.readouterr().out == "from process 0\n"
        assert sum(isinstance(f, _log.ProcessZeroOnly) for f in _log.logger.filters) == 1
    finally:
        _log.speak_from(0)


def test_log_receives_the_lines_instead_of_the_console(capsys):
    lines = []
    with _log.forwarded_to(lines.append):
        _log.logger.info("to the caller")
    _log.logger.info("to the console")
    assert lines == ["to the caller"] and capsys.readouterr().out == "to the console\n"
    assert sum(isinstance(h, _log._Console) for h in _log.logger.handlers) == 1  # put back, once


def test_the_logger_does_not_repeat_through_the_root_logger(caplog):
    assert _log.logger.propagate is False and _log.logger.level == logging.INFO
