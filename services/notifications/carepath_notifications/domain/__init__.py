"""Pure notification logic: signing, retry decisions, subscription matching and access,
delivery jobs, email text, ids, stream positions."""

from carepath_notifications.domain.attempts import AttemptResult, Decision, decide
from carepath_notifications.domain.dedup import delivery_key, webhook_message_id
from carepath_notifications.domain.email_render import RenderedEmail, render_email
from carepath_notifications.domain.jobs import DeliveryJob
from carepath_notifications.domain.notice import endpoint_key, event_teams, notice_body, targets
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
    "AttemptResult",
    "Decision",
    "DeliveryJob",
    "Outcome",
    "RenderedEmail",
    "RetryPolicy",
    "Subscription",
    "build_headers",
    "classify",
    "decide",
    "delivery_key",
    "endpoint_key",
    "event_teams",
    "generate_secret",
    "load_subscriptions",
    "matches",
    "notice_body",
    "parse_retry_after",
    "parse_subscriptions",
    "render_email",
    "select",
    "sign",
    "targets",
    "webhook_message_id",
]
