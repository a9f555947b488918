"""The ``carepath`` console command.

This package only gathers subcommands. A service's own subcommands live with the service
(``carepath_pathway.cli`` for ``evaluate``, ``carepath_notifications.cli`` for its dead
letters and redrive); the platform's (topics, tail, replay, dlq, asyncapi, k8s) live here.
Each is registered by an ``add_<name>(subparsers)`` function that sets ``handler`` to a
callable taking the parsed arguments and returning the exit code; list a new one in
``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

Subparsers = Any  # argparse's _SubParsersAction is private


def _add_evaluate(sub: Subparsers) -> None:
    from carepath_pathway.cli import add_evaluate

    add_evaluate(sub)  # carepath evaluate FILE|- [--profile NAME], the pathway's own


def _add_topics(sub: Subparsers) -> None:
    p = sub.add_parser("topics", help="create or list the Kafka topics")
    p.add_argument("action", choices=["create", "list"])
    p.add_argument("--namespace", default=None)

    def handler(args: argparse.Namespace) -> int:
        from carepath_runtime.topics_command import topics_command

        return topics_command(args.action, args.namespace)

    p.set_defaults(handler=handler)


def _add_tail(sub: Subparsers) -> None:
    from carepath.tail_command import add_tail_arguments

    p = sub.add_parser(
        "tail",
        help="follow a topic and print its events as JSON lines",
        description="Follow a topic from now, a time, an offset or the beginning.",
    )
    add_tail_arguments(p)

    def handler(args: argparse.Namespace) -> int:
        from carepath.tail_command import tail_command

        return tail_command(args)

    p.set_defaults(handler=handler)


def _add_replay(sub: Subparsers) -> None:
    from carepath.tail_command import add_replay_arguments

    p = sub.add_parser(
        "replay", help="print an episode's full history across topics, in time order"
    )
    add_replay_arguments(p)

    def handler(args: argparse.Namespace) -> int:
        from carepath.tail_command import replay_command

        return replay_command(args)

    p.set_defaults(handler=handler)


def _add_asyncapi(sub: Subparsers) -> None:
    from carepath.asyncapi_command import add_asyncapi_arguments

    p = sub.add_parser(
        "asyncapi", help="generate (or --check) the AsyncAPI documents and event catalog"
    )
    add_asyncapi_arguments(p)

    def handler(args: argparse.Namespace) -> int:
        from carepath.asyncapi_command import run_asyncapi

        return run_asyncapi(args)

    p.set_defaults(handler=handler)


def _add_notifications(sub: Subparsers) -> None:
    from carepath_notifications.cli import add_notifications

    add_notifications(sub)  # carepath notifications dead-letters | redrive


def _add_dlq(sub: Subparsers) -> None:
    from carepath.dlq_command import add_dlq

    add_dlq(sub)  # carepath dlq list | show | redrive --service NAME
def _add_k8s(sub: Subparsers) -> None:
    from carepath.k8s_command import add_k8s

    add_k8s(sub)  # carepath k8s topics [--check]


_SUBCOMMANDS: list[Callable[[Subparsers], None]] = [
    _add_evaluate,
    _add_topics,
    _add_tail,
    _add_replay,
    _add_asyncapi,
    _add_notifications,
    _add_dlq,
    _add_k8s,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carepath", description="Carepath command line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
