"""Redis Cluster safety of the key layout and the replication a cluster size implies."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from carepath.k8s_command import render
from carepath_contracts.topics import ALL_TOPICS, replication_for
from carepath_notifications.job_queue import JobQueue
from carepath_referrals.plan_store import PlanStore
from carepath_runtime.state_store import StateStore

ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                     blacklist_characters="{}"), min_size=1, max_size=40)


def slot(k: str) -> int:
    return int(key_slot(k.encode()))


@given(namespace=st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True), episode=ids)
def test_a_states_keys_share_one_slot(namespace: str, episode: str) -> None:
    store = StateStore(None, namespace, "careplan")  # type: ignore[arg-type]
    assert slot(store.state_key(episode)) == slot(store.published_key(episode))


@given(episode=ids, referral=ids)
def test_an_episodes_referral_keys_share_the_plans_slot(episode: str, referral: str) -> None:
    class _Rt:
        class settings:
            namespace = "cp"
        redis = None

    store = PlanStore(_Rt())  # type: ignore[arg-type]
    plan = StateStore(None, "cp", "careplan")  # type: ignore[arg-type]
    want = slot(plan.state_key(episode))
    assert slot(store.referral_key(episode, referral)) == want
    assert slot(store.episode_index(episode)) == want


def test_the_notification_queue_lives_in_one_slot() -> None:
    class _R:
        def register_script(self, src: str) -> str:
            return src

    q = JobQueue(_R(), "cp")  # type: ignore[arg-type]
    keys = [q.job_key("sub:evt"), q.dead_key, q.outbox_key, f"{q.prefix}:ready",
            f"{q.prefix}:due:https-example", f"{q.prefix}:inflight:x", f"{q.prefix}:leases"]
    assert len({slot(k) for k in keys}) == 1


@given(st.integers(min_value=1, max_value=100))
def test_replication_never_exceeds_the_brokers_and_tolerates_one_loss(brokers: int) -> None:
    rf, min_isr = replication_for(brokers)
    assert 1 <= min_isr <= rf <= brokers
    if brokers >= 3:
        assert (rf, min_isr) == (3, 2)  # one broker down: writes still accepted, none lost


def test_generated_kafka_topics_follow_the_specs() -> None:
    docs = [d for d in yaml.safe_load_all(render("carepath", "kc", brokers=3)) if d]
    assert [d["spec"]["topicName"] for d in docs] == [s.name("carepath") for s in ALL_TOPICS]
    for doc, spec in zip(docs, ALL_TOPICS, strict=True):
        assert doc["apiVersion"] == "kafka.strimzi.io/v1"
        assert doc["spec"]["partitions"] == spec.partitions
        assert doc["spec"]["replicas"] == 3
        assert doc["spec"]["config"]["min.insync.replicas"] == "2"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "kc"
    single = [d for d in yaml.safe_load_all(render("carepath", "kc", brokers=1)) if d]
    assert {d["spec"]["replicas"] for d in single} == {1}
