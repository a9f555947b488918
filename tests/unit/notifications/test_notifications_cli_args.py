"""`carepath notifications dead-letters|redrive`: argument wiring and usage errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from carepath_notifications import cli as notifications_command
from carepath_notifications.cli import EXIT_USAGE, add_notifications, redrive_command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carepath")
    add_notifications(p.add_subparsers(dest="command", required=True))
    return p


def recorder(calls: list[tuple[object, ...]]) -> Callable[..., int]:
    def record(*args: object) -> int:
        calls.append(args)
        return 0

    return record


def test_dead_letters_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(notifications_command, "list_dead_letters", recorder(calls))
    args = parser().parse_args(["notifications", "dead-letters", "--namespace", "ns",
                                "--subscription", "s1", "--limit", "5", "--json"])
    assert args.handler(args) == 0
    assert calls == [("ns", "s1", 5, True)]


def test_redrive_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(notifications_command, "redrive_command", recorder(calls))
    args = parser().parse_args(["notifications", "redrive", "s1:ev-1", "s1:ev-2",
                                "--dry-run"])
    assert args.handler(args) == 0
    assert calls == [(["s1:ev-1", "s1:ev-2"], False, None, None, True)]
    args = parser().parse_args(["notifications", "redrive", "--all", "--subscription", "s2"])
    args.handler(args)
    assert calls[-1] == ([], True, "s2", None, False)


def test_an_action_is_required() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["notifications"])


@pytest.mark.parametrize(("ids", "all_"), [((), False), (("s1:ev",), True)])
def test_redrive_needs_ids_or_all_but_not_both(ids: tuple[str, ...], all_: bool) -> None:
    assert redrive_command(ids, all_) == EXIT_USAGE
