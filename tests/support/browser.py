"""Helpers for the browser tier: Playwright (Python, from PyPI) driving Debian's Chromium against
the real stack (Kafka, Redis, the four services and the console as processes, on free ports,
in a namespace of their own). No browser is downloaded; under CI=true a missing Chromium fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from carepath_testkit.processes import Stack
from support.processes import ServiceProcess, free_port

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = os.environ.get("CAREPATH_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "services" / "console" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "console"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EHR = {"Authorization": "Bearer dev-ehr-token"}

@dataclass
class Console:
    stack: Stack
    console: ServiceProcess

    @property
    def url(self) -> str:
        return self.console.url

    @classmethod
    def from_file(cls, path: str) -> Console:
        """A stack another process started (``{"ns", "<service>": url}``), for iterating."""
        import json

        data = json.loads(Path(path).read_text())
        stack = Stack(data["ns"])
        for name, url in data.items():
            if name != "ns":
                port = int(url.rsplit(":", 1)[1])
                stack.services[name] = ServiceProcess(name, f"carepath_{name}.main", port, {})
        return cls(stack, stack.services.pop("console"))

    def submit(self, episode: dict[str, Any]) -> str:
        r = httpx.post(f"{self.stack['intake'].url}/episodes", json=episode, headers=EHR,
                       timeout=15)
        assert r.status_code == 202, r.text
        return str(r.json()["episode_id"])

    def api(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.stack['referrals'].url}{path}",
                             headers={"Authorization": f"Bearer {token}"}, timeout=15, **kw)


def start_console(stack: Stack, extra: dict[str, str] | None = None) -> ServiceProcess:
    port = free_port()
    env = {
        "REDIS_URL": stack["referrals"].env["REDIS_URL"],
        "CAREPATH_NAMESPACE": stack.namespace,
        "CONSOLE_PORT": str(port),
        "REFERRALS_PORT": str(stack["referrals"].port),
        "NOTIFICATIONS_PORT": str(stack["notifications"].port),
        "CONSOLE_TEST_HOOKS": "1",
        **(extra or {}),
    }
    proc = ServiceProcess("console", "carepath_console.main", port, env)
    proc.start()
    return proc


def sign_in(browser: Any, console: Console, subject: str) -> Any:
    """A fresh browser context signed in through the development sign-in page."""
    # bypass_csp only so that the tests can inject axe-core; the app itself runs under its CSP.
    ctx = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 900},
                              bypass_csp=True)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto("/signin")
    page.click(f'button[data-subject="{subject}"]')
    page.wait_for_selector("#signout")
    return page


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious or critical axe-core violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"][:3]]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
