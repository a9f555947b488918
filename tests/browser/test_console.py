"""The console in a real browser against the real stack.

The journey (intake -> worklist card without reload -> accept -> complete the block with 85%
-> RFA card -> the coordinator's episode page shows the new plan version and the rationale),
decline and reroute, scoping, the live dashboard across a dropped stream, accessibility with
axe-core on every screen and a task done with the keyboard only. Screenshots of every screen
go to docs/console/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import _drop_namespaces, _topics, unavailable

from support.browser import (
    AXE,
    CHROMIUM,
    FLAGS,
    Console,
    axe_violations,
    screenshot,
    sign_in,
    start_console,
)
from support.observe import wait_until
from support.processes import start_stack

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        unavailable("Chromium", f"{CHROMIUM} missing (deploy/chromium.sh installs it)")
    if not AXE.exists():
        unavailable("axe-core", f"{AXE} missing (make console-web installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, redis_url: str, chromium_path: str) -> Iterator[Console]:
    from carepath_runtime.kafka_admin import create_topics

    reuse = os.environ.get("CAREPATH_CONSOLE_TEST_STACK")
    if reuse:  # local iteration only: a stack already started by the same harness
        yield Console.from_file(reuse)
        return

    # Not of the generated-namespace shape that every test session deletes when it ends
    # (a parallel session on a shared broker would delete it under us); removed here instead.
    ns = f"ui{uuid.uuid4().hex[:8]}console"
    asyncio.run(create_topics(kafka_bootstrap, ns))
    stack = start_stack(ns, kafka_bootstrap, redis_url)
    try:
        proc = start_console(stack)
    except Exception:
        stack.stop()
        raise
    c = Console(stack, proc)
    # Warm up: the consumers have joined their groups once one episode went all the way, so
    # the tests time the console's live path, not a cold start on a busy machine.
    warm = c.submit({**MBB_EPISODE, "episode_id": f"warmup-{uuid.uuid4().hex[:8]}"})
    assert wait_until(lambda: bool((plan(c, warm) or {}).get("referrals")), timeout=240)
    yield c
    proc.stop()
    stack.stop()
    topics = {t for t in asyncio.run(_topics(kafka_bootstrap)) if t.startswith(f"{ns}.")}
    asyncio.run(_drop_namespaces(kafka_bootstrap, redis_url, topics))


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's launch gives Chromium a new, empty --user-data-dir of its own each time
    # (it refuses the flag from us); every context is a fresh profile as well.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=FLAGS)
        yield b
        b.close()

PAIN = "pain@example.org"
PSYCHOLOGY = "psychology@example.org"
SURGERY = "surgery@example.org"
COORDINATOR = "coordinator@example.org"
DASHBOARD = "dashboard@example.org"
COORD_TOKEN = "dev-coordinator-token"

# Imaging done and the facet injections failed: the pathway asks for a medial branch block.
MBB_EPISODE: dict[str, Any] = {
    "region": "lumbar", "pain_nrs": 7, "symptom_duration_months": 9,
    "facet_injections": [{"levels": ["L4-L5"], "relief_percent": 20,
                          "relief_duration_weeks": 1, "technically_adequate": True}],
    "medial_branch_blocks": [], "rfa_history": [], "imaging_done": ["xray", "mri"],
    "imaging_findings": ["facet_arthropathy"], "radicular_pain": False,
    "neurological_deficit": "none", "bowel_bladder_dysfunction": False, "red_flags": [],
    "si_provocation_positive": 0, "trigger_points": False, "neuropathic_features": False,
    "phq9": 3, "gad7": 2, "pain_catastrophizing": 8, "prior_spine_surgery": False,
    "physical_therapy_weeks": 8,
}


def new_episode(console: Console, prefix: str) -> str:
    return console.submit({**MBB_EPISODE, "episode_id": f"{prefix}-{uuid.uuid4().hex[:8]}"})


def card(page: Any, episode_id: str, step: str) -> Any:
    return page.locator(f'li.card[data-step="{step}"]', has=page.locator(
        f'a:text-is("{episode_id}")'))


def plan(console: Console, episode_id: str) -> dict[str, Any] | None:
    r = console.api("GET", f"/episodes/{episode_id}/careplan", COORD_TOKEN)
    return r.json() if r.status_code == 200 else None


def referral_of(console: Console, episode_id: str, step: str) -> dict[str, Any] | None:
    p = plan(console, episode_id)
    found = [r for r in (p or {}).get("referrals", {}).values() if r["step"] == step]
    return found[0] if found else None


def test_journey_from_intake_to_the_rfa_card(console: Console, browser: Any) -> None:
    page = sign_in(browser, console, PAIN)
    page.goto("/worklist?queue=open&sort=due")
    page.wait_for_selector("ul.cards")
    loads = page.evaluate("performance.getEntriesByType('navigation').length")
    page.evaluate("window.__marker = 'no-reload'")

    ep = new_episode(console, "journey")
    mbb = card(page, ep, "diagnostic.medial_branch_block")
    mbb.wait_for(timeout=60_000)  # arrives live: no reload, the marker survives
    assert page.evaluate("window.__marker") == "no-reload"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
    assert "Medial branch block" in mbb.inner_text()
    assert "routine" in mbb.inner_text() or "urgent" in mbb.inner_text()
    screenshot(page, "worklist")

    mbb.locator('button[data-action="accept"]').click()
    mbb = card(page, ep, "diagnostic.medial_branch_block")
    mbb.locator('button[data-action="complete"]').wait_for()
    mbb.locator('button[data-action="complete"]').click()
    form = mbb.locator("form")
    # A value the API refuses: the error appears beside the field it names.
    form.locator('input[name="relief_percent"]').fill("150")
    form.locator('button[type="submit"]').click()
    err = form.locator('[data-field="relief_percent"] .field-error')
    err.wait_for()
    wait_until(lambda: err.inner_text().strip() != "", timeout=15)
    assert err.inner_text().strip() != ""
    screenshot(page, "complete-form-error")
    form.locator('input[name="relief_percent"]').fill("85")
    form.locator('select[name="anesthetic"]').select_option("lidocaine")
    form.locator('button[type="submit"]').click()

    card(page, ep, "ablation.rfa").wait_for(timeout=60_000)
    assert page.evaluate("window.__marker") == "no-reload"
    done = referral_of(console, ep, "diagnostic.medial_branch_block")
    assert done is not None and done["status"] == "completed"
    assert done["outcome"]["relief_percent"] == 85

    coord = sign_in(browser, console, COORDINATOR)
    coord.goto(f"/episodes/{ep}")
    coord.wait_for_selector('[data-recommendation="ablation.rfa"]')
    p = plan(console, ep)
    assert p is not None
    version = coord.locator("[data-plan-version]")
    assert version.get_attribute("data-plan-version") == str(p["version"])
    rfa_rec = next(r for r in p["recommendations"].values() if r["step"] == "ablation.rfa")
    rfa_item = coord.locator('[data-recommendation="ablation.rfa"]')
    assert rfa_rec["rationale"] in rfa_item.inner_text()
    assert "Outcomes reported" in coord.inner_text("main")
    screenshot(coord, "episode")


def test_decline_and_reroute(console: Console, browser: Any) -> None:
    ep = new_episode(console, "reroute")
    page = sign_in(browser, console, PAIN)
    page.goto("/worklist?queue=unclaimed")
    mbb = card(page, ep, "diagnostic.medial_branch_block")
    mbb.wait_for(timeout=60_000)
    mbb.locator('button[data-action="decline"]').click()
    mbb.locator('textarea[name="reason"]').fill("No capacity this month; please send elsewhere")
    mbb.locator('button[type="submit"]').click()
    mbb.wait_for(state="detached", timeout=30_000)

    coord = sign_in(browser, console, COORDINATOR)
    coord.goto("/coordinator?queue=declined")
    declined = card(coord, ep, "diagnostic.medial_branch_block")
    declined.wait_for(timeout=30_000)
    assert "No capacity this month" in declined.inner_text()
    screenshot(coord, "coordinator-declined")
    declined.locator('button[data-action="reroute"]').click()
    declined.locator('select[name="to_team"]').select_option("surgery")
    declined.locator('textarea[name="reason"]').fill("Surgery reviews this one")
    declined.locator('button[type="submit"]').click()
    declined.wait_for(state="detached", timeout=30_000)

    surgeon = sign_in(browser, console, SURGERY)
    surgeon.goto("/worklist?queue=open")
    card(surgeon, ep, "diagnostic.medial_branch_block").wait_for(timeout=30_000)
    ref = referral_of(console, ep, "diagnostic.medial_branch_block")
    assert ref is not None and ref["team"] == "surgery"


def test_a_team_sees_only_its_own_cards_and_episodes(console: Console, browser: Any) -> None:
    ep = new_episode(console, "scope")
    assert wait_until(lambda: referral_of(console, ep, "diagnostic.medial_branch_block")
                      is not None, timeout=60)
    p = plan(console, ep)
    assert p is not None
    # Psychology holds no referral on it, now or earlier (no reroute, no decline).
    assert all(r["team"] != "psychology" and not r["routing_history"]
               for r in p["referrals"].values())

    psych = sign_in(browser, console, PSYCHOLOGY)
    psych.goto("/worklist?queue=open")
    psych.wait_for_function("document.body.dataset.rendered")
    cards = psych.locator("li.card")
    teams = {cards.nth(i).get_attribute("data-team") for i in range(cards.count())}
    assert teams <= {"psychology"}, teams
    assert psych.locator(f'a:text-is("{ep}")').count() == 0
    # An unknown episode and another team's episode look the same: nothing here.
    psych.goto("/episodes/no-such-episode-0000")
    psych.wait_for_selector("[data-nothing]")
    unknown_text = psych.inner_text("main")
    screenshot(psych, "nothing-here")
    # Guessing the address of another team's episode shows nothing of it.
    psych.goto(f"/episodes/{ep}")
    psych.wait_for_selector("h1")
    wait_until(lambda: psych.locator("[data-nothing], [data-plan-version]").count() > 0,
               timeout=15)
    assert psych.locator("[data-nothing]").count() == 1, "another team's episode was shown"
    assert psych.locator("[data-recommendation]").count() == 0
    assert psych.inner_text("main") == unknown_text


def _inbox_truth(console: Console) -> Counter[str]:
    r = console.api("GET", "/inbox", COORD_TOKEN)
    assert r.status_code == 200, r.text
    return Counter(x["status"] for x in r.json()["referrals"]
                   if x["status"] not in ("completed", "cancelled"))


def _dashboard(page: Any) -> dict[str, Any]:
    out: dict[str, Any] = page.evaluate("window.__carepathDashboard()")
    return out


def test_dashboard_counts_live_and_across_a_dropped_stream(console: Console,
                                                           browser: Any) -> None:
    page = sign_in(browser, console, DASHBOARD)
    page.goto("/dashboard")
    page.wait_for_selector('#conn-state[data-state="connected"]')

    def settled() -> bool:
        return Counter(_dashboard(page)["byStatus"]) == _inbox_truth(console)

    assert wait_until(settled, timeout=60), (_dashboard(page), _inbox_truth(console))
    before = _dashboard(page)["open"]

    ep = new_episode(console, "dash")
    assert wait_until(lambda: _dashboard(page)["open"] > before, timeout=60)
    assert wait_until(settled, timeout=60)
    requested = Counter(_dashboard(page)["byStatus"]).get("accepted", 0)
    ref = referral_of(console, ep, "diagnostic.medial_branch_block")
    assert ref is not None
    r = console.api("POST", f"/referrals/{ref['referral_id']}/accept",
                    "dev-interventional-token", json={})
    assert r.status_code == 200, r.text
    assert wait_until(lambda: Counter(_dashboard(page)["byStatus"]).get("accepted", 0)
                      == requested + 1, timeout=60)
    screenshot(page, "dashboard")

    # Kill the stream: restart the notifications service (the console's upstream). While it
    # is down another episode arrives; after the reconnect nothing is lost or counted twice.
    connects = int(page.get_attribute("#conn-state", "data-connects") or "1")
    console.stack["notifications"].stop()
    ep2 = new_episode(console, "dash")
    assert wait_until(lambda: referral_of(console, ep2, "diagnostic.medial_branch_block")
                      is not None, timeout=60)
    time.sleep(1)
    console.stack["notifications"].start()
    assert wait_until(
        lambda: int(page.get_attribute("#conn-state", "data-connects") or "0") > connects
        and page.get_attribute("#conn-state", "data-state") == "connected", timeout=60)
    assert wait_until(settled, timeout=60), (_dashboard(page), _inbox_truth(console))
    # The console's own hook drops the relay too; the page resumes from its last id.
    dropped = httpx.post(f"{console.url}/test/drop-streams", headers={"Origin": console.url})
    assert dropped.status_code == 200 and dropped.json()["dropped"] >= 1
    ep3 = new_episode(console, "dash")
    assert wait_until(lambda: referral_of(console, ep3, "diagnostic.medial_branch_block")
                      is not None, timeout=60)
    assert wait_until(settled, timeout=60), (_dashboard(page), _inbox_truth(console))
    assert _dashboard(page)["episodes"] >= 3


def test_no_serious_accessibility_violation_on_any_screen(console: Console,
                                                          browser: Any) -> None:
    ep = new_episode(console, "a11y")
    assert wait_until(lambda: referral_of(console, ep, "diagnostic.medial_branch_block")
                      is not None, timeout=60)
    ctx = browser.new_context(base_url=console.url, bypass_csp=True)
    signin = ctx.new_page()
    signin.goto("/signin")
    signin.wait_for_selector("button[data-subject]")
    screenshot(signin, "signin")
    found = {"signin": axe_violations(signin)}

    pain = sign_in(browser, console, PAIN)
    pain.goto("/worklist?queue=open")
    card(pain, ep, "diagnostic.medial_branch_block").wait_for(timeout=60_000)
    found["worklist"] = axe_violations(pain)
    c = card(pain, ep, "diagnostic.medial_branch_block")
    c.locator('button[data-action="decline"]').click()
    found["decline-form"] = axe_violations(pain)

    coord = sign_in(browser, console, COORDINATOR)
    for name, path in (("coordinator", "/coordinator?queue=urgent"),
                       ("episode", f"/episodes/{ep}"), ("dashboard", "/dashboard")):
        coord.goto(path)
        coord.wait_for_function("document.body.dataset.rendered")
        found[name] = axe_violations(coord)
        if name == "coordinator":
            screenshot(coord, "coordinator")
    assert all(not v for v in found.values()), found


def test_claim_accept_and_complete_with_the_keyboard_only(console: Console,
                                                         browser: Any) -> None:
    ep = new_episode(console, "keys")
    assert wait_until(lambda: referral_of(console, ep, "diagnostic.medial_branch_block")
                      is not None, timeout=60)
    ctx = browser.new_context(base_url=console.url, bypass_csp=True)
    page = ctx.new_page()
    page.goto("/signin")
    page.wait_for_selector("button[data-subject]")

    def tab_to(selector: str, limit: int = 400) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to(f'button[data-subject="{PAIN}"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#signout")
    # Queue "unclaimed" through its tab link, then the card's Claim button.
    tab_to('a[data-queue="unclaimed"]')
    page.keyboard.press("Enter")
    card(page, ep, "diagnostic.medial_branch_block").wait_for(timeout=60_000)
    rid = referral_of(console, ep, "diagnostic.medial_branch_block")["referral_id"]  # type: ignore[index]
    base = f'li.card[data-referral="{rid}"]'
    tab_to(f'{base} button[data-action="claim"]')
    page.keyboard.press("Enter")
    assert wait_until(lambda: (referral_of(console, ep, "diagnostic.medial_branch_block")
                               or {}).get("status") == "received", timeout=30)
    tab_to('a[data-queue="mine"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{base} button[data-action="accept"]')
    tab_to(f'{base} button[data-action="accept"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{base} button[data-action="complete"]')
    tab_to(f'{base} button[data-action="complete"]')
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{base} input[name="relief_percent"]')
    assert page.evaluate("document.activeElement.name") == "relief_percent"
    page.keyboard.type("85")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "anesthetic"
    page.keyboard.press("ArrowDown")
    tab_to(f'{base} form button[type="submit"]')
    page.keyboard.press("Enter")

    def completed() -> dict[str, Any]:
        return referral_of(console, ep, "diagnostic.medial_branch_block") or {}

    assert wait_until(lambda: completed().get("status") == "completed", timeout=30)
    assert completed()["outcome"] == {"kind": "medial_branch_block", "relief_percent": 85,
                                      "anesthetic": "lidocaine"}
