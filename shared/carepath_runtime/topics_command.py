"""`carepath topics create|list`: create the namespace's topics with their configs."""

from __future__ import annotations

import asyncio

from carepath_contracts.topics import Topics
from carepath_runtime.kafka_admin import create_topics, wait_for_kafka
from carepath_runtime.settings import get_settings
from carepath_runtime.transport_security import kafka_client_options


def topics_command(action: str, namespace: str | None = None) -> int:
    settings = get_settings()
    ns = namespace or settings.namespace
    if action == "create":
        options = kafka_client_options(settings)
        asyncio.run(wait_for_kafka(settings.kafka_bootstrap_servers, timeout=60,
                                   client_options=options))
        created = asyncio.run(create_topics(settings.kafka_bootstrap_servers, ns,
                                            client_options=options))
        print(f"topics ready in namespace {ns!r} ({len(created)} created)")
        return 0
    if action == "list":
        for name, spec in Topics(ns).all():
            kind = "compacted" if spec.compacted else "log"
            print(f"{name}\t{spec.partitions} partitions\t{kind}\t{spec.description}")
        return 0
    print(f"unknown action {action!r}")
    return 2


def main() -> int:
    """``carepath-topics create|list``: the one-shot topics job of an image (compose, k8s)."""
    import argparse

    parser = argparse.ArgumentParser(prog="carepath-topics", description=__doc__)
    parser.add_argument("action", choices=["create", "list"])
    parser.add_argument("--namespace", default=None)
    args = parser.parse_args()
    return topics_command(args.action, args.namespace)
