"""The `sentinel` entry point: a Ctrl-C while the command line is still loading ends it with 130 and
one line, never a traceback."""

from __future__ import annotations

import sys
import types

import pytest

from sentinel_cli import entry


def test_a_ctrl_c_while_loading_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loading = types.ModuleType("sentinel_cli.main")

    def interrupted(name: str) -> object:
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of an import

    loading.__getattr__ = interrupted  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "sentinel_cli.main", loading)

    with pytest.raises(SystemExit) as exited:
        try:
            entry.main(["status", "job-1"])
        except KeyboardInterrupt:  # not caught: a failure of this test, not a Ctrl-C of the whole run
            pytest.fail("the interrupt went through the entry point")

    assert exited.value.code == 130
    assert capsys.readouterr().err == "sentinel: interrupted\n"


def test_once_loaded_the_command_runs_with_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entry.main(["--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: sentinel ")
