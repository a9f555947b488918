"""Kafka over SASL_SSL (SCRAM-SHA-512) and Redis over TLS with an ACL user, end to end.

The project's own broker and Redis are started that way by ``deploy/kafka/kafka.sh`` and
``deploy/redis/redis.sh`` (their opt-in TLS modes) on this test's ports (Kafka 19192, its
controller 19193, Redis TLS 16390) and run directory, with a CA and server certificate the test
makes with the openssl CLI. Topics are created through the admin client with the TLS settings,
the four services start with them (as the e2e tests start them), and one episode goes through
intake -> pathway -> referrals.

Also checked: no plaintext way in (a plaintext Kafka client and a plaintext Redis client get
nothing), and wrong credentials are refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from carepath_runtime.kafka_admin import create_topics
from carepath_runtime.redis_client import make_redis
from carepath_runtime.settings import Settings
from carepath_runtime.transport_security import kafka_client_options
from support.api import auth
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
KAFKA_PORT, CONTROLLER_PORT, REDIS_TLS_PORT = 19192, 19193, 16390
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path
    keystore: Path  # key + certificate in one PEM file, for Kafka


def make_certificates(d: Path) -> Certificates:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to make the test certificates")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=carepath test CA", "-keyout", "ca.key", "-out", "ca.pem",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "server.key", cwd=d)  # PKCS#8, as Kafka's PEM keystore wants
    _openssl("req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1",
             "-out", "server.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.pem",
             cwd=d)
    keystore = d / "kafka-keystore.pem"
    keystore.write_bytes((d / "server.key").read_bytes() + (d / "server.pem").read_bytes())
    for f in (d / "server.key", d / "ca.key", keystore):
        f.chmod(0o600)
    return Certificates(d / "ca.pem", d / "server.pem", d / "server.key", keystore)


@dataclass(frozen=True)
class Secure:
    env: dict[str, str]  # what the services and the scripts are given
    settings: Settings
    redis_url: str


def _script_env(run_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}  # else the scripts no-op
    return {**env, "RUN_DIR": str(run_dir), **extra}


def _run(script: str, action: str, env: dict[str, str], timeout: float = 240
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / script), action], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    base = tmp_path_factory.mktemp("transport")
    certs = make_certificates(base)
    run_dir = base / "run"
    kafka_password = f"k-{uuid.uuid4().hex}"
    redis_password = f"r-{uuid.uuid4().hex}"
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "carepath",
        "KAFKA_SASL_PASSWORD": kafka_password,
        "KAFKA_SSL_CAFILE": str(certs.ca),
        "REDIS_USERNAME": "carepath",
        "REDIS_PASSWORD": redis_password,
        "REDIS_SSL_CA_CERTS": str(certs.ca),
    }
    scripts = _script_env(run_dir, {
        **env, "KAFKA_PORT": str(KAFKA_PORT), "KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT),
        "KAFKA_BROKER_KEYSTORE_PEM": str(certs.keystore),
        "REDIS_TLS_PORT": str(REDIS_TLS_PORT), "REDIS_TLS_CERT_FILE": str(certs.cert),
        "REDIS_TLS_KEY_FILE": str(certs.key), "REDIS_TLS_CA_CERT_FILE": str(certs.ca),
        "REDIS_ACL_USER": "carepath", "REDIS_ACL_PASSWORD": redis_password,
        "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
    })
    started: list[str] = []
    try:
        r = _run("deploy/redis/redis.sh", "start", scripts)
        assert r.returncode == 0, r.stderr[-3000:]
        started.append("deploy/redis/redis.sh")
        k = _run("deploy/kafka/kafka.sh", "start", scripts)
        started.append("deploy/kafka/kafka.sh")
        assert k.returncode == 0, k.stderr[-3000:]
        redis_url = f"rediss://127.0.0.1:{REDIS_TLS_PORT}/0"
        settings = Settings(kafka_bootstrap_servers=BOOTSTRAP, redis_url=redis_url,
                            kafka_security_protocol="SASL_SSL",
                            kafka_sasl_username="carepath",
                            kafka_sasl_password=SecretStr(kafka_password),
                            kafka_ssl_cafile=str(certs.ca), redis_username="carepath",
                            redis_password=SecretStr(redis_password),
                            redis_ssl_ca_certs=str(certs.ca))
        yield Secure(env, settings, redis_url)
    finally:
        for script in reversed(started):
            _run(script, "stop", scripts, timeout=120)


async def _list_topics(options: dict[str, object]) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000,
                                **options)
    try:
        await admin.start()
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_no_plaintext_or_wrong_credentials_get_in(secure: Secure) -> None:
    with pytest.raises((KafkaError, OSError)):
        asyncio.run(asyncio.wait_for(_list_topics({}), 20))  # plaintext client: no answer
    wrong = secure.settings.model_copy(update={"kafka_sasl_password": SecretStr("nope")})
    with pytest.raises((KafkaError, OSError)):
        asyncio.run(asyncio.wait_for(_list_topics(kafka_client_options(wrong)), 20))
    with pytest.raises(redis.exceptions.ConnectionError):  # no plaintext Redis port
        redis.Redis(host="127.0.0.1", port=REDIS_TLS_PORT, socket_timeout=3).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(secure.redis_url, username="carepath", password="nope",
                             ssl_ca_certs=str(secure.settings.redis_ssl_ca_certs)).ping()
    with pytest.raises(redis.exceptions.RedisError):  # the default user is off
        redis.Redis.from_url(secure.redis_url,
                             ssl_ca_certs=str(secure.settings.redis_ssl_ca_certs)).set("k", "v")


def test_an_episode_reaches_referrals_over_tls_and_sasl(secure: Secure) -> None:
    async def ping() -> bool:
        client = make_redis(secure.settings)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    assert asyncio.run(ping())
    ns = f"tls{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(BOOTSTRAP, ns,
                              client_options=kafka_client_options(secure.settings)))
    stack = start_stack(ns, BOOTSTRAP, secure.redis_url, extra_env=secure.env)
    try:
        episode_id = f"ep-{uuid.uuid4().hex[:8]}"
        r = httpx.post(f"{stack['intake'].url}/episodes", timeout=10,
                       headers={"Authorization": "Bearer dev-ehr-token"},
                       json={"episode_id": episode_id, "region": "lumbar",
                             "imaging_done": ["xray", "mri"],
                             "facet_injections": [{"relief_percent": 20,
                                                   "technically_adequate": True}],
                             "medial_branch_blocks": [{"relief_percent": 85}],
                             "radicular_pain": False, "red_flags": [],
                             "bowel_bladder_dysfunction": False,
                             "neurological_deficit": "none"})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 90
        referrals: list[dict[str, object]] = []
        while time.monotonic() < deadline and not referrals:
            got = httpx.get(f"{stack['referrals'].url}/episodes/{episode_id}/referrals",
                            headers=auth("coordinator"), timeout=10)
            if got.status_code == 200:
                body = got.json()
                referrals = body["referrals"] if isinstance(body, dict) else body
            time.sleep(0.5)
        assert referrals, "no referral appeared over the TLS/SASL stack"
        assert any(ref.get("step") == "ablation.rfa" for ref in referrals), referrals
    finally:
        stack.stop()
