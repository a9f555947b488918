"""Pure notification logic: signing, retry decisions, subscription matching, email text, ids."""

from carepath_notifications.domain.dedup import delivery_key, webhook_message_id
from carepath_notifications.domain.email_render import RenderedEmail, render_email
from carepath_notifications.domain.retry_policy import (
    Outcome,
    RetryPolicy,
    classify,
    parse_retry_after,
)
from carepath_notifications.domain.signing import build_headers, generate_secret, sign
from carepath_notifications.domain.subscriptions import (
    Subscription,
    load_subscriptions,
    matches,
    parse_subscriptions,
    select,
)

__all__ = [
    "Outcome",
    "RenderedEmail",
    "RetryPolicy",
    "Subscription",
    "build_headers",
    "classify",
    "delivery_key",
    "generate_secret",
    "load_subscriptions",
    "matches",
    "parse_retry_after",
    "parse_subscriptions",
    "render_email",
    "select",
    "sign",
    "webhook_message_id",
]
