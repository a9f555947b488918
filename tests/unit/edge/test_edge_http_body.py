"""The HTTP edge in process (ASGI): strict JSON, media types, body limits, problem answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request

from carepath_runtime.http_body import FHIR_JSON, JSON, read_json_object
from carepath_runtime.http_edge import install_edge
from carepath_runtime.http_params import episode_id_path
from carepath_runtime.settings import Settings

SECRET = "s3cr3t-value-never-echoed"


def make_app() -> FastAPI:
    app = FastAPI()
    install_edge(app, Settings(carepath_max_body_bytes=4096,
                               carepath_max_fhir_body_bytes=8192))

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return await read_json_object(request)

    @app.post("/fhir/Bundle")
    async def bundle(request: Request) -> dict[str, Any]:
        return {"keys": len(await read_json_object(request, (FHIR_JSON, JSON)))}

    @app.get("/episodes/{episode_id}")
    async def episode(episode_id: str = episode_id_path()) -> dict[str, str]:
        return {"episode_id": episode_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"internal detail {SECRET}")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(409, "taken")

    return app


@pytest.fixture()
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as c:
        yield c


def is_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    assert SECRET not in r.text
    return body


async def test_only_json_media_types_are_read(client: httpx.AsyncClient) -> None:
    ok = await client.post("/echo", content=b'{"a": 1}', headers={"content-type": JSON})
    assert ok.status_code == 200 and ok.json() == {"a": 1}
    with_charset = await client.post("/echo", content=b"{}",
                                     headers={"content-type": "application/json; charset=utf-8"})
    assert with_charset.status_code == 200
    # Before: a substring match on "json" and a missing Content-Type were accepted.
    for ctype in ("text/json", "application/jsonp", "application/x-json-ish", None):
        headers = {"content-type": ctype} if ctype else {}
        r = await client.post("/echo", content=b"{}", headers=headers)
        is_problem(r, 415)
    fhir = await client.post("/fhir/Bundle", content=b"{}", headers={"content-type": FHIR_JSON})
    assert fhir.status_code == 200


async def test_duplicate_keys_are_refused_naming_the_key_path(client: httpx.AsyncClient) -> None:
    raw = b'{"region": "lumbar", "scs_trial": {"relief_percent": 1, "relief_percent": 99}}'
    body = is_problem(await client.post("/echo", content=raw,
                                        headers={"content-type": JSON}), 400)
    assert body["errors"] == [{"field": "scs_trial.relief_percent",
                               "reason": "duplicate key: each key may appear once"}]
    assert "99" not in str(body)
    raw = b'{"a": [{"k": "' + SECRET.encode() + b'", "k": 2}]}'
    body = is_problem(await client.post("/echo", content=raw,
                                        headers={"content-type": JSON}), 400)
    assert body["errors"][0]["field"] == "a[0].k"


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": NaN}', b'{"a": Infinity}',
                                 b"\xff\xfe{}", b"[" * 2000 + b"]" * 2000])
async def test_malformed_json_is_400_without_echo(client: httpx.AsyncClient, raw: bytes) -> None:
    is_problem(await client.post("/echo", content=raw, headers={"content-type": JSON}), 400)


async def test_a_body_over_its_limit_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = b'{"a": "' + b"x" * 5000 + b'"}'
    body = is_problem(await client.post("/echo", content=big, headers={"content-type": JSON}),
                      413)
    assert "4096" in body["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: a chunked body
        yield b'{"a": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    is_problem(await client.post("/echo", content=chunks(), headers={"content-type": JSON}), 413)
    # FHIR Bundles have their own, larger limit.
    fhir = await client.post("/fhir/Bundle", content=big, headers={"content-type": FHIR_JSON})
    assert fhir.status_code == 200


async def test_routing_errors_and_crashes_are_problems(client: httpx.AsyncClient) -> None:
    body = is_problem(await client.get("/nowhere"), 404)
    assert body["detail"] == "no such resource"
    r = await client.delete("/echo")
    is_problem(r, 405)
    assert "POST" in r.headers["allow"]
    body = is_problem(await client.get("/boom"), 500)
    assert "internal detail" not in r.text and "Traceback" not in str(body)
    assert is_problem(await client.get("/teapot"), 409)["detail"] == "taken"


@pytest.mark.parametrize("episode_id", ["%20%20%20", "-x", "x" * 129, "a%20b", "a:b%3F"])
async def test_a_malformed_episode_id_in_a_path_is_422(client: httpx.AsyncClient,
                                                       episode_id: str) -> None:
    body = is_problem(await client.get(f"/episodes/{episode_id}"), 422)
    assert body["errors"][0]["field"].endswith("episode_id")
    assert "x" * 129 not in str(body)


async def test_an_id_with_a_slash_reaches_no_route(client: httpx.AsyncClient) -> None:
    # Intake refuses such an id (422); a URL holding one matches no route: a 404 problem.
    is_problem(await client.get("/episodes/a%2Fb"), 404)


async def test_a_good_episode_id_passes(client: httpx.AsyncClient) -> None:
    r = await client.get("/episodes/ep-2026.05_a:1")
    assert r.status_code == 200 and r.json() == {"episode_id": "ep-2026.05_a:1"}
