"""``carepath evaluate FILE|- [--profile NAME]``: evaluate one episode, print the answer.

Reads a JSON episode from a file or standard input (``-``), validates it strictly, evaluates it
with the pure pathway engine and prints ONE JSON object (the contract's shape) on standard
output; exit status 0. Invalid JSON, an invalid episode (each error names the field), an
unreadable file or an unknown profile: message on standard error, exit status 2.

The profile is ``--profile``, else ``$CAREPATH_PATHWAY_PROFILE``, else ``seed``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson
from pydantic import ValidationError

from carepath_contracts.episode import Episode, validation_errors

EXIT_OK = 0
EXIT_INVALID = 2
PROFILE_ENV = "CAREPATH_PATHWAY_PROFILE"


def _read(source: str) -> bytes:
    if source == "-":
        stdin: Any = sys.stdin
        buffer = getattr(stdin, "buffer", None)
        if buffer is not None:
            data: bytes = buffer.read()
            return data
        text: str = stdin.read()
        return text.encode("utf-8")
    with open(source, "rb") as fh:
        return fh.read()


def _error(message: str) -> int:
    print(f"carepath evaluate: {message}", file=sys.stderr)
    return EXIT_INVALID


def evaluate_command(source: str, profile: str | None = None) -> int:
    """Evaluate the episode in ``source`` (a path, or ``-`` for stdin); return the exit code."""
    from carepath_pathway.domain import UnknownProfile, evaluate, get_profile

    name = profile or os.environ.get(PROFILE_ENV) or "seed"
    try:
        chosen = get_profile(name)
    except UnknownProfile as exc:
        return _error(str(exc))
    try:
        raw = _read(source)
    except OSError as exc:
        return _error(f"cannot read {source!r}: {exc.strerror or exc}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        return _error("invalid episode: (root): expected a JSON object")
    try:
        episode = Episode.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc)
        lines = "\n".join(f"  {e['field']}: {e['reason']}" for e in errors)
        print(f"carepath evaluate: invalid episode ({len(errors)} error(s)):\n{lines}",
              file=sys.stderr)
        return EXIT_INVALID
    result = evaluate(episode, chosen)
    sys.stdout.write(orjson.dumps(result.to_json_dict()).decode("utf-8") + "\n")
    sys.stdout.flush()
    return EXIT_OK


def add_evaluate(sub: Any) -> None:
    """Register ``carepath evaluate`` on the ``carepath`` command's subparsers."""
    import argparse

    parser = sub.add_parser(
        "evaluate",
        help="evaluate one episode (JSON) and print the pathway's answer",
        description="Evaluate one episode and print the pathway's answer as one JSON object.",
    )
    parser.add_argument("source", metavar="FILE",
                        help="episode JSON file, or - for standard input")
    parser.add_argument(
        "--profile",
        default=None,
        help="threshold profile: seed (default), consensus-2020 or sis "
        "(default from $CAREPATH_PATHWAY_PROFILE)",
    )

    def handler(args: argparse.Namespace) -> int:
        return evaluate_command(args.source, args.profile)

    parser.set_defaults(handler=handler)
