"""Real-browser check of the back office, the API docs and the Content-Security-Policy.

Run through ``bash .ci/browser-check``, which starts ``make run`` on a throw-away data directory
and calls this script with ``--base-url``. It drives headless Chromium (a 1400 px wide window)
through chromedriver (Selenium), uses the pages the way an organizer and the platform admin
would, and fails on any broken page. The organizer's part is the back office end to end: a
seeded New York show's page shows local times, prices in dollars and the same sales as
``GET /events/{id}/sales`` (chart, attendee list, CSV); a new event is created with two ticket
types in New York time and dollars, given an image, published from the changelist, and the API
must then show the same times, prices and image. Then the webhooks pages (an endpoint added, pinged,
its delivery replayed), the admin login with two-factor authentication (for a staff user made for the
check) and the Users changelist's data-request actions (export, delete). Each failing step leaves a
screenshot. It also fails on any CSP violation, collected two ways:

* a ``securitypolicyviolation`` listener installed before any page script runs (CDP
  ``Page.addScriptToEvaluateOnNewDocument``), which keeps what it saw in sessionStorage and also
  logs it to the console, so violations survive form submissions and page changes;
* the browser console log (``goog:loggingPrefs``), where Chromium reports every refusal
  ("Refused to ... because it violates the following Content Security Policy directive").

A self-test first provokes one violation on purpose and requires both channels to see it, so the
check cannot pass just because nothing was listening.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pyotp
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

# The demo accounts `make run` seeds (README); demo data only, never a real secret.
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "eventflow-demo-2026")
ORGANIZER = "organizer@example.com"
ADMIN = "admin@example.com"
BUYER = "alice@example.com"

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",  # the back office must fit a 1400 px wide window
]

VIOLATIONS_KEY = "__eventflowCspViolations"
CONSOLE_MARK = "EVENTFLOW-CSP-VIOLATION "
# Runs in every document before its own scripts (CDP scripts are not subject to the page's CSP).
LISTENER_JS = f"""
(() => {{
  const record = (e) => {{
    const v = {{
      directive: e.effectiveDirective || e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile ? e.sourceFile + ":" + e.lineNumber + ":" + e.columnNumber : "",
      sample: e.sample || "",
      disposition: e.disposition,
      page: String(document.location.href),
    }};
    try {{
      const list = JSON.parse(sessionStorage.getItem("{VIOLATIONS_KEY}") || "[]");
      list.push(v);
      sessionStorage.setItem("{VIOLATIONS_KEY}", JSON.stringify(list));
    }} catch (err) {{ /* opaque origins have no sessionStorage: the console line below remains */ }}
    console.warn("{CONSOLE_MARK}" + JSON.stringify(v));
  }};
  document.addEventListener("securitypolicyviolation", record, true);
}})();
"""
READ_VIOLATIONS_JS = f"""
try {{
  const raw = sessionStorage.getItem("{VIOLATIONS_KEY}");
  sessionStorage.removeItem("{VIOLATIONS_KEY}");
  return raw || "[]";
}} catch (err) {{ return "[]"; }}
"""
# Every stylesheet the page links to has loaded (a refused one has no .sheet).
UNLOADED_STYLESHEETS_JS = """
return Array.from(document.querySelectorAll('link[rel~="stylesheet"]'))
  .filter((l) => !l.sheet).map((l) => l.href);
"""


# How far a table sticks out of the window, and which of the named columns (th.column-NAME) are out of view.
FITS_JS = """
const table = document.querySelector(arguments[0]);
const viewport = document.documentElement.clientWidth;
const hidden = arguments[1].filter((name) => {
  const th = table.querySelector("th.column-" + name);
  return !th || th.getBoundingClientRect().right > viewport + 0.5;
});
return {viewport: viewport, width: Math.round(table.getBoundingClientRect().width),
        overflow: document.documentElement.scrollWidth - viewport, hidden: hidden};
"""


# GET a same-origin URL with the page's session; the status, content type and line count (async script).
FETCH_TEXT_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: "same-origin"})
  .then((r) => r.text().then((t) => done({status: r.status, type: r.headers.get("content-type") || "",
                                         lines: t.split("\\n").filter((l) => l.trim()).length})))
  .catch((e) => done({status: 0, type: String(e), lines: 0}));
"""
# POST the changelist's form as it stands (ticked rows, chosen action) with the page's session and
# CSRF token: the answer's status, headers and body, which a download would not show (async script).
POST_CHANGELIST_FORM_JS = """
const done = arguments[arguments.length - 1];
const form = document.getElementById("changelist-form");
const data = new FormData(form);
data.set("index", "0");  // what the “Go” button adds: Django runs an action only when "index" is posted
// Not form.action: the form's <select name="action"> shadows that property.
fetch(form.getAttribute("action") || document.location.href, {method: "POST", body: data, credentials: "same-origin"})
  .then((r) => r.text().then((t) => done({status: r.status, type: r.headers.get("content-type") || "",
                                         disposition: r.headers.get("content-disposition") || "",
                                         cache: r.headers.get("cache-control") || "", body: t})))
  .catch((e) => done({status: 0, type: String(e), disposition: "", cache: "", body: ""}));
"""
# A seeded event with sales (seed_demo): the New York show.
SEEDED_SHOW = "Late Show: Stand-up in the Village"


class CheckFailed(Exception):
    pass


def describe(event: dict) -> str:
    sample = f", sample {event['sample']!r}" if event.get("sample") else ""
    return (
        f"CSP violation: {event.get('directive')} blocked {event.get('blocked') or '(inline)'} "
        f"on {event.get('page')} (source {event.get('source') or '-'}{sample})"
    )


class BrowserCheck:
    def __init__(
        self,
        base_url: str,
        chromium: str,
        chromedriver: str,
        screenshots: Path,
        timeout: float,
        allowed: list[tuple[str, str]] | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.allowed = allowed or []
        self.screenshots = screenshots
        self.timeout = timeout
        self.results: list[tuple[str, bool, str]] = []
        self.console_notes: list[str] = []
        self.shot_count = 0
        self.profile = tempfile.mkdtemp(prefix="eventflow-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
        self.driver.set_page_load_timeout(timeout * 2)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LISTENER_JS})

    def close(self) -> None:
        try:
            self.driver.quit()
        except Exception as exc:  # the browser may already be gone; chromedriver is stopped either way
            print(f"(closing the browser: {exc})")
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, condition: Callable, what: str, timeout: float | None = None):
        try:
            # Pages re-render while they load (select2, Swagger UI, ReDoc): a stale element means look again.
            wait = WebDriverWait(
                self.driver, timeout or self.timeout, ignored_exceptions=[StaleElementReferenceException]
            )
            return wait.until(condition)
        except TimeoutException:
            raise CheckFailed(f"timed out waiting for {what} on {self.driver.current_url}") from None

    def visible(self, css: str, what: str | None = None) -> WebElement:
        return self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), what or css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, element: WebElement) -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def styles_loaded(self) -> None:
        missing = self.driver.execute_script(UNLOADED_STYLESHEETS_JS)
        if missing:
            raise CheckFailed(f"stylesheets not applied: {', '.join(missing)}")

    def shot(self, name: str) -> None:
        self.shot_count += 1
        path = self.screenshots / f"{self.shot_count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))

    def sign_in(self, email: str) -> None:
        self.get("/admin/login/")
        self.visible("#id_username").send_keys(email)
        self.driver.find_element(By.ID, "id_password").send_keys(DEMO_PASSWORD)
        self.click(self.driver.find_element(By.CSS_SELECTOR, '#login-form [type="submit"]'))
        self.wait(lambda d: "/admin/login/" not in d.current_url, "the admin index after signing in")
        self.visible("#user-tools", "the signed-in user tools")

    def fresh_session(self, email: str) -> None:
        """Signed in as ``email`` whatever the checks before left behind (a check of its own)."""
        self.get("/admin/login/")
        self.driver.delete_all_cookies()
        self.sign_in(email)

    def run_action(self, action: str) -> None:
        """Choose ``action`` in the changelist's action menu (rows already ticked) and press “Go”."""
        Select(self.visible("select[name='action']", "the action menu")).select_by_value(action)
        self.click(self.driver.find_element(By.CSS_SELECTOR, "#changelist-form button[name='index']"))

    def fits(self, table: str, columns: list[str], what: str) -> None:
        """The ``table`` fits the window, with each of ``columns`` (th.column-NAME) in view."""
        fit = self.driver.execute_script(FITS_JS, table, columns)
        # A changelist's table scrolls in its own box (div.results): it must not need to.
        scrolls = self.driver.execute_script(
            "const box = document.querySelector(arguments[0]).parentElement;return box.scrollWidth - box.clientWidth;",
            table,
        )
        if fit["overflow"] > 0 or fit["hidden"] or scrolls > 0:
            raise CheckFailed(
                f"the {what} does not fit a {fit['viewport']} px window: {fit['overflow']} px too wide, "
                f"{scrolls} px to scroll in its box, columns out of view: {fit['hidden']}"
            )

    def messages(self) -> list[str]:
        return [m.text for m in self.visible(".messagelist", "the admin's messages").find_elements(By.TAG_NAME, "li")]

    def collect_violations(self) -> tuple[list[dict], list[str]]:
        """Violations seen since the last call: listener events and console refusals."""
        events: list[dict] = []
        with contextlib.suppress(WebDriverException):
            events.extend(json.loads(self.driver.execute_script(READ_VIOLATIONS_JS)))
        refusals: list[str] = []
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            if CONSOLE_MARK in message:
                raw = message.split(CONSOLE_MARK, 1)[1]
                # Console lines arrive as JSON string literals: "…{\"directive\": …}"
                raw = raw.rstrip('"').replace('\\"', '"').replace("\\\\", "\\")
                try:
                    events.append(json.loads(raw))
                except ValueError:
                    refusals.append(message)
            elif "Content Security Policy" in message or "Refused to" in message:
                refusals.append(message)
            elif entry.get("level") == "SEVERE":
                self.console_notes.append(message)
        unique = {json.dumps({k: v for k, v in e.items() if k != "page"}, sort_keys=True): e for e in events}
        return list(unique.values()), sorted(set(refusals))

    # --- running ----------------------------------------------------------------------------

    def run(self, name: str, check: Callable[[], str | None]) -> None:
        start = time.monotonic()
        detail, ok = "", True
        try:
            detail = check() or ""
        except Exception as exc:
            ok = False
            detail = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if not isinstance(exc, CheckFailed):
                traceback.print_exc()
            with contextlib.suppress(WebDriverException):
                self.shot(f"{name}-FAILED")
        try:
            events, refusals = self.collect_violations()
        except WebDriverException as exc:
            events, refusals = [], [f"could not read the violations: {exc}"]
        known = [e for e in events if self.is_allowed(e.get("directive", ""), e.get("blocked", ""))]
        events = [e for e in events if e not in known]
        refusals = [m for m in refusals if not any(self.is_allowed(d, u, m) for d, u in self.allowed)]
        if known:
            allowed = ", ".join(sorted({f"{e.get('directive')} {e.get('blocked')}" for e in known}))
            detail = "; ".join([d for d in [detail] if d] + [f"known violation allowed: {allowed}"])
        if events or refusals:
            ok = False
            lines = [describe(e) for e in events] + [f"console: {m}" for m in refusals]
            detail = "; ".join([d for d in [detail] if d] + lines)
        seconds = time.monotonic() - start
        self.results.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({seconds:.1f}s){'  ' + detail if detail else ''}", flush=True)

    def is_allowed(self, directive: str, blocked: str, console_message: str | None = None) -> bool:
        """An expected violation named with --allow-violation DIRECTIVE=URL (an event, or its console line)."""
        if console_message is not None:
            return f"'{blocked}'" in console_message and f'directive: "{directive} ' in console_message
        return (directive, blocked) in self.allowed

    # --- the checks ---------------------------------------------------------------------------

    def check_csp_header(self) -> str:
        found = {}
        for path in ("/admin/login/", "/api/docs", "/api/redoc"):
            with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:  # noqa: S310 (http://127.0.0.1)
                found[path] = response.headers.get("Content-Security-Policy", "")
        for path, policy in found.items():
            script_src = re.search(r"script-src ([^;]*)", policy)
            if not script_src:
                raise CheckFailed(f"{path} has no Content-Security-Policy with a script-src: {policy!r}")
            if "unsafe" in script_src.group(1):
                raise CheckFailed(f"{path} allows unsafe scripts: script-src {script_src.group(1)}")
        return f"script-src {re.search(r'script-src ([^;]*)', found['/admin/login/']).group(1)}"

    def check_detector(self) -> str:
        """Provoke one violation (an image from another origin) and require both channels to see it."""
        self.get("/admin/login/")
        self.visible("#id_username")
        self.collect_violations()
        self.driver.execute_script(
            "const i = new Image(); i.src = 'https://csp-self-test.invalid/probe.png'; document.body.appendChild(i);"
        )
        seen: dict[str, list] = {"events": [], "console": []}

        def provoked(_driver) -> bool:
            events, refusals = self.collect_violations()
            seen["events"] += events
            seen["console"] += refusals
            return bool(seen["events"]) and bool(seen["console"])

        try:
            WebDriverWait(self.driver, 5, poll_frequency=0.2).until(provoked)
        except TimeoutException:
            raise CheckFailed(
                f"the provoked img-src violation was not seen (listener: {seen['events']}, console: {seen['console']})"
            ) from None
        if not any(e.get("directive") == "img-src" for e in seen["events"]):
            raise CheckFailed(f"unexpected self-test violation: {seen['events']}")
        return "a provoked img-src violation reached the listener and the console log"

    def check_admin_login_page(self) -> str:
        self.get("/admin/login/")
        self.visible("#login-form #id_username")
        self.visible("#id_password")
        self.styles_loaded()
        header = self.driver.execute_script(
            "return getComputedStyle(document.getElementById('header')).backgroundColor;"
        )
        if header in ("", "transparent", "rgba(0, 0, 0, 0)"):
            raise CheckFailed("the admin's stylesheet is not applied (no header background)")
        self.shot("admin-login")
        return f"login form rendered, styled (header {header})"

    def check_front_door(self) -> str:
        """``/`` is a page with working links, and the admin's “View site” leads there."""
        self.get("/")
        links = {a.get_attribute("href") for a in self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "a"), "links")}
        broken = {}
        for href in sorted(h for h in links if h and h.startswith(self.base)):
            answer = self.driver.execute_async_script(FETCH_TEXT_JS, href)
            if answer["status"] != 200:
                broken[href] = answer["status"]
        if broken:
            raise CheckFailed(f"links on / that do not answer 200: {broken}")
        self.styles_loaded()
        self.shot("front-door")
        return f"/ links to {len(links)} page(s), all answering 200"

    def check_organizer_sign_in(self) -> str:
        self.sign_in(ORGANIZER)
        self.styles_loaded()
        view_site = self.visible("#user-tools a[href]", "“View site”").get_attribute("href")
        if view_site.rstrip("/") != self.base:
            raise CheckFailed(f"the admin's “View site” points at {view_site}, not the start page")
        self.shot("admin-index-organizer")
        return f"signed in as {ORGANIZER}"

    def check_events_changelist(self) -> str:
        self.get("/admin/events/event/")
        self.visible("#result_list")
        rows = self.all("#result_list tbody tr")
        if not rows:
            raise CheckFailed("the Events changelist has no rows")
        # actions.js: the select-all box ticks every row and updates the "n of m selected" counter.
        counter = self.driver.find_element(By.CSS_SELECTOR, ".action-counter")
        before = counter.text
        self.click(self.driver.find_element(By.ID, "action-toggle"))
        self.wait(lambda d: counter.text != before, "the action counter to change (actions.js)")
        ticked = len([box for box in self.all("#result_list tbody input.action-select") if box.is_selected()])
        if ticked != len(rows):
            raise CheckFailed(f"select-all ticked {ticked} of {len(rows)} rows")
        self.shot("events-changelist")
        self.click(self.driver.find_element(By.ID, "action-toggle"))  # untick again
        return f"{len(rows)} rows; select-all (actions.js) says {counter.text!r}"

    def check_events_search(self) -> str:
        self.get("/admin/events/event/")
        first_title = self.visible("#result_list tbody tr th a").text
        term = max(re.findall(r"\w+", first_title), key=len)
        box = self.visible("#searchbar")
        box.clear()
        box.send_keys(term, Keys.ENTER)
        self.wait(lambda d: "q=" in d.current_url, "the search results page")
        titles = [a.text for a in self.all("#result_list tbody tr th a")]
        if first_title not in titles:
            raise CheckFailed(f"searching {term!r} did not find {first_title!r}: {titles}")
        self.shot("events-search")
        return f"search {term!r}: {len(titles)} result(s)"

    def check_event_change_page(self) -> str:
        self.get("/admin/events/event/")
        self.click(self.visible("#result_list tbody tr th a"))
        self.visible("#event_form")
        self.styles_loaded()
        group = self.visible("#ticket_types-group", "the ticket types inline")
        rows_css = "#ticket_types-group tbody tr.form-row:not(.empty-form)"
        existing = len(self.all(rows_css + ".has_original"))
        if not existing:
            raise CheckFailed("the ticket types inline shows no ticket type")
        before = len(self.all(rows_css))
        add = self.wait(
            lambda d: next((a for a in group.find_elements(By.CSS_SELECTOR, ".add-row a") if a.is_displayed()), None),
            "the inline's “Add another” link (inlines.js)",
        )
        link_text = add.text
        self.click(add)
        self.wait(lambda d: len(self.all(rows_css)) == before + 1, "a new ticket type row")
        new_row = self.all(rows_css)[-1]
        pickers = new_row.find_elements(By.CSS_SELECTOR, "input[type='datetime-local']")
        if len(pickers) != 2:
            raise CheckFailed(f"the added row has {len(pickers)} date-and-time inputs, not 2 (sales start and end)")
        if not new_row.find_elements(By.CSS_SELECTOR, ".inline-deletelink"):
            raise CheckFailed("the added row has no remove link")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", group)
        fit = self.driver.execute_script(FITS_JS, "#ticket_types-group table", ["on_sale", "sold", "held"])
        if fit["overflow"] > 0 or fit["hidden"]:
            raise CheckFailed(
                f"the ticket types inline does not fit a {fit['viewport']} px window: {fit['overflow']} px too wide, "
                f"columns out of view: {fit['hidden']}"
            )
        self.shot("event-change")
        collapsible = len(self.all("fieldset details, fieldset.collapse"))
        return (
            f"{existing} ticket type(s); {link_text!r}: rows {before} → {before + 1}, new row has date-and-time inputs"
            f"; inline {fit['width']} px wide in a {fit['viewport']} px window, available/sold/held in view"
            f"; {collapsible} collapsible fieldset(s)"
        )

    def check_event_add_page(self) -> str:
        self.get("/admin/events/event/add/")
        self.visible("#event_form")
        self.styles_loaded()
        # prepopulate.js: the slug follows the title.
        self.visible("#id_title").send_keys("Browser Check Gala")
        self.wait(
            lambda d: d.find_element(By.ID, "id_slug").get_attribute("value") == "browser-check-gala",
            "the slug to be derived from the title (prepopulate.js)",
        )
        # DateTimeShortcuts.js: "Today" / "Now" links and the calendar and clock pop-ups.
        shortcuts = self.all("#id_starts_at_0 ~ .datetimeshortcuts, .field-starts_at .datetimeshortcuts")
        if not shortcuts:
            raise CheckFailed("starts_at has no date/time shortcuts (DateTimeShortcuts.js)")
        date_input = self.driver.find_element(By.ID, "id_starts_at_0")
        time_input = self.driver.find_element(By.ID, "id_starts_at_1")
        today = self.driver.find_element(
            By.XPATH, "//input[@id='id_starts_at_0']/following-sibling::span[@class='datetimeshortcuts'][1]/a[1]"
        )
        self.click(today)
        self.wait(lambda d: date_input.get_attribute("value"), "“Today” to fill the date")
        now = self.driver.find_element(
            By.XPATH, "//input[@id='id_starts_at_1']/following-sibling::span[@class='datetimeshortcuts'][1]/a[1]"
        )
        self.click(now)
        self.wait(lambda d: time_input.get_attribute("value"), "“Now” to fill the time")
        calendar_icon = self.driver.find_element(
            By.XPATH, "//input[@id='id_starts_at_0']/following-sibling::span[@class='datetimeshortcuts'][1]/a[2]"
        )
        self.click(calendar_icon)
        self.visible(".calendarbox", "the calendar pop-up")
        self.shot("event-add-calendar")
        self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        clock_icon = self.driver.find_element(
            By.XPATH, "//input[@id='id_starts_at_1']/following-sibling::span[@class='datetimeshortcuts'][1]/a[2]"
        )
        self.click(clock_icon)
        self.visible(".clockbox", "the clock pop-up")
        return (
            f"slug prepopulated; Today/Now filled {date_input.get_attribute('value')} "
            f"{time_input.get_attribute('value')}; calendar and clock pop-ups open"
        )

    # --- the organizers' back office, end to end ------------------------------------------------

    def api(self, path: str, token: str | None = None, data: dict | None = None) -> dict:
        """The public API, as a client sees it: JSON in, JSON out."""
        method = "POST" if data is not None else "GET"
        request = urllib.request.Request(self.base + path, method=method)  # noqa: S310 (http://127.0.0.1)
        request.add_header("Accept", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        body = None
        if data is not None:
            request.add_header("Content-Type", "application/json")
            body = json.dumps(data).encode()
        with urllib.request.urlopen(request, body, timeout=self.timeout) as response:  # noqa: S310 (http://127.0.0.1)
            raw = response.read()
            return json.loads(raw) if raw else {}  # 204 No Content: {}

    def open_event(self, title: str) -> int:
        """The event's change page, found by searching the changelist as an organizer would."""
        self.get("/admin/events/event/?q=" + urllib.parse.quote(title))
        links = [a for a in self.all("#result_list tbody tr th a") if a.text == title]
        if not links:
            raise CheckFailed(f"the Events changelist has no {title!r}")
        self.click(links[0])
        self.visible("#event_form")
        match = re.search(r"/admin/events/event/(\d+)/change/", self.driver.current_url)
        if not match:
            raise CheckFailed(f"unexpected change page address {self.driver.current_url}")
        return int(match.group(1))

    def check_sales_at_a_glance(self) -> str:
        """A seeded New York show: local times, prices in dollars, its sales, chart and attendees."""
        event_id = self.open_event(SEEDED_SHOW)
        event = self.api(f"/api/v1/events/{event_id}")
        local = datetime.fromisoformat(event["starts_at"]).astimezone(ZoneInfo(event["timezone"]))
        shown = (
            self.driver.find_element(By.ID, "id_starts_at_0").get_attribute("value"),
            self.driver.find_element(By.ID, "id_starts_at_1").get_attribute("value"),
        )
        if shown != (local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")):
            raise CheckFailed(f"starts at is shown as {shown}, the API says {local:%Y-%m-%d %H:%M:%S} {local.tzname()}")
        help_text = self.driver.find_element(By.CSS_SELECTOR, ".field-starts_at .help:not(.timezonewarning)").text
        if event["timezone"] not in help_text:
            raise CheckFailed(f"the form does not name the time zone {event['timezone']}: {help_text!r}")
        prices = [
            self.driver.find_element(By.ID, f"id_ticket_types-{i}-price").get_attribute("value")
            for i in range(len(event["ticket_types"]))
        ]
        expected = [f"{tier['price_cents'] / 100:.2f}" for tier in event["ticket_types"]]
        if sorted(prices) != sorted(expected):
            raise CheckFailed(f"ticket type prices shown {prices}, the API's are {expected} ({event['currency']})")
        summary = self.visible(".eventflow-sales", "the sales summary")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", summary)
        total = summary.find_elements(By.CSS_SELECTOR, "tfoot td")
        sold, revenue = int(total[1].text), total[5].text
        sales = self.sales_as_the_api_says(event_id)
        if sold != sales["sold"] or sold == 0:
            raise CheckFailed(f"the summary says {sold} sold, GET /sales {sales['sold']}")
        if revenue != f"{sales['gross_cents'] / 100:.2f} {event['currency']}":
            raise CheckFailed(f"the summary's revenue {revenue!r} is not GET /sales' {sales['gross_cents']} cents")
        bars = summary.find_elements(By.CSS_SELECTOR, "svg rect")
        if not bars:
            raise CheckFailed("the sales summary has no chart of sales per day")
        self.shot("event-sales-summary")
        csv_url = summary.find_element(By.PARTIAL_LINK_TEXT, "CSV").get_attribute("href")
        csv_head = self.driver.execute_async_script(FETCH_TEXT_JS, csv_url)
        if csv_head["status"] != 200 or "text/csv" not in csv_head["type"] or csv_head["lines"] < 2:
            raise CheckFailed(f"the attendee CSV link answered {csv_head}")
        self.click(summary.find_element(By.LINK_TEXT, "Attendee list"))
        self.visible("#result_list", "the attendee list (tickets of this event)")
        attendees = len(self.all("#result_list tbody tr"))
        self.shot("event-attendees")
        return (
            f"{SEEDED_SHOW!r}: starts {shown[0]} {shown[1]} {local.tzname()}, prices {prices} {event['currency']}; "
            f"{sold} sold, revenue {revenue} (= GET /sales), {len(bars)}-day chart; CSV {csv_head['lines'] - 1} "
            f"attendee(s); attendee list {attendees} row(s)"
        )

    def sales_as_the_api_says(self, event_id: int) -> dict:
        token = self.api("/api/v1/auth/login", data={"email": ORGANIZER, "password": DEMO_PASSWORD})["access"]
        sales = self.api(f"/api/v1/events/{event_id}/sales", token=token)
        return {"sold": sum(t["sold"] for t in sales["ticket_types"]), "gross_cents": sales["gross_cents"]}

    def check_create_and_publish_event(self) -> str:
        """The issue's walk: a new event in New York time with two ticket types priced in dollars and an
        image, published from the changelist; the API then shows the same times and prices."""
        token = self.api("/api/v1/auth/login", data={"email": ORGANIZER, "password": DEMO_PASSWORD})["access"]
        profile = self.api("/api/v1/organizers/me", token=token)
        zone = ZoneInfo("America/New_York")
        day = (datetime.now(zone) + timedelta(days=120)).date()
        title = f"Browser Check Night {secrets.token_hex(3)}"
        starts_local = datetime.combine(day, dt_time(21, 30), tzinfo=zone)
        ends_local = datetime.combine(day, dt_time(23, 45), tzinfo=zone)
        sales_end_local = datetime.combine(day, dt_time(18, 0), tzinfo=zone)

        self.get("/admin/events/event/add/")
        self.visible("#event_form")
        defaults = (
            Select(self.driver.find_element(By.ID, "id_timezone")).first_selected_option.get_attribute("value"),
            Select(self.driver.find_element(By.ID, "id_currency")).first_selected_option.get_attribute("value"),
        )
        if defaults != (profile["timezone"], profile["currency"]):
            raise CheckFailed(
                f"a new event starts with {defaults}, the organizer's defaults are "
                f"{(profile['timezone'], profile['currency'])}"
            )
        self.driver.find_element(By.ID, "id_title").send_keys(title)
        self.driver.find_element(By.ID, "id_venue_name").send_keys("Blue Note")
        self.driver.find_element(By.ID, "id_city").send_keys("New York")
        Select(self.driver.find_element(By.ID, "id_country")).select_by_value("US")
        Select(self.driver.find_element(By.ID, "id_timezone")).select_by_value("America/New_York")
        Select(self.driver.find_element(By.ID, "id_currency")).select_by_value("USD")
        for field, when in (("starts_at", starts_local), ("ends_at", ends_local)):
            for suffix, value in (("0", when.strftime("%Y-%m-%d")), ("1", when.strftime("%H:%M:%S"))):
                box = self.driver.find_element(By.ID, f"id_{field}_{suffix}")
                box.clear()
                box.send_keys(value)
        poster = Path(self.profile) / "poster.png"
        Image.new("RGB", (1200, 630), "#417690").save(poster)  # what a poster upload looks like
        self.driver.find_element(By.ID, "id_new_image").send_keys(str(poster))

        tiers = [("Table", "25.00", "120"), ("Bar standing", "12.50", "60")]
        group = self.visible("#ticket_types-group")
        add = group.find_element(By.CSS_SELECTOR, ".add-row a")
        self.click(add)
        self.wait(lambda d: d.find_elements(By.ID, "id_ticket_types-1-name"), "a second ticket type row")
        for index, (name, price, capacity) in enumerate(tiers):
            for field, value in (("name", name), ("price", price), ("capacity", capacity)):
                box = self.driver.find_element(By.ID, f"id_ticket_types-{index}-{field}")
                box.clear()
                box.send_keys(value)
        # The browser's own date-and-time picker takes its value in the ISO form it submits.
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            self.driver.find_element(By.ID, "id_ticket_types-1-sales_end"),
            sales_end_local.strftime("%Y-%m-%dT%H:%M"),
        )
        self.shot("event-create-filled")
        self.click(self.driver.find_element(By.CSS_SELECTOR, "input[name='_continue']"))
        self.wait(
            lambda d: "/add/" not in d.current_url or d.find_elements(By.CSS_SELECTOR, ".errornote"),
            "the saved event's page",
        )
        errors = [e.text for e in self.all(".errornote, .errorlist li")]
        if errors:
            raise CheckFailed(f"saving the event was refused: {errors}")
        match = re.search(r"/admin/events/event/(\d+)/change/", self.driver.current_url)
        if not match:
            raise CheckFailed(f"unexpected page after saving: {self.driver.current_url}")
        event_id = int(match.group(1))
        shown = (
            self.driver.find_element(By.ID, "id_starts_at_1").get_attribute("value"),
            [self.driver.find_element(By.ID, f"id_ticket_types-{i}-price").get_attribute("value") for i in (0, 1)],
            self.driver.find_element(By.ID, "id_ticket_types-1-sales_end").get_attribute("value"),
        )
        if shown != ("21:30:00", ["25.00", "12.50"], sales_end_local.strftime("%Y-%m-%dT%H:%M")):
            raise CheckFailed(f"after saving the page shows starts {shown[0]}, prices {shown[1]}, sales end {shown[2]}")
        preview = self.visible(".eventflow-image-preview", "the uploaded image's preview")
        self.wait(
            lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", preview),
            "the uploaded image to load",
        )

        self.get("/admin/events/event/?q=" + urllib.parse.quote(title))
        self.click(self.visible(f"#result_list input.action-select[value='{event_id}']"))
        Select(self.driver.find_element(By.CSS_SELECTOR, "select[name='action']")).select_by_value("publish_events")
        self.click(self.driver.find_element(By.CSS_SELECTOR, "#changelist-form button[name='index']"))
        self.visible(".messagelist", "the publish action's message")
        self.shot("event-published")

        event = self.api(f"/api/v1/events/{event_id}")  # anonymous: only a published event is found
        tiers_by_name = {tier["name"]: tier for tier in event["ticket_types"]}
        problems = []
        if event["status"] != "published":
            problems.append(f"status {event['status']}")
        if (event["timezone"], event["currency"]) != ("America/New_York", "USD"):
            problems.append(f"zone and currency {event['timezone']}, {event['currency']}")
        for field, want in (("starts_at", starts_local), ("ends_at", ends_local)):
            if datetime.fromisoformat(event[field]) != want:
                problems.append(f"{field} {event[field]} is not {want.isoformat()}")
        if {name: t["price_cents"] for name, t in tiers_by_name.items()} != {"Table": 2500, "Bar standing": 1250}:
            problems.append(f"prices {[(n, t['price_cents']) for n, t in tiers_by_name.items()]}")
        sales_end = tiers_by_name.get("Bar standing", {}).get("sales_end")
        if not sales_end or datetime.fromisoformat(sales_end) != sales_end_local:
            problems.append(f"Bar standing sales_end {sales_end} is not {sales_end_local.isoformat()}")
        image = self.driver.execute_async_script(FETCH_TEXT_JS, event.get("image_url") or "")
        if image["status"] != 200 or not image["type"].startswith("image/"):
            problems.append(f"image_url {event.get('image_url')} answered {image}")
        if problems:
            raise CheckFailed("the API disagrees with the admin: " + "; ".join(problems))
        self.created = (event_id, title, tiers_by_name["Table"]["id"])
        return (
            f"event {event_id} saved with 21:30 New York and 25.00 / 12.50 USD; API: starts_at {event['starts_at']}, "
            f"price_cents 2500 / 1250, image {image['type']}, published"
        )

    def check_cancel_and_refund(self) -> str:
        """A buyer pays for a ticket of the event just published (test gateway); the organizer cancels
        the event with the changelist's action, and its page shows the buyer refunded."""
        if not getattr(self, "created", None):
            raise CheckFailed("no event was created by the previous check")
        event_id, title, tier_id = self.created
        buyer = self.api("/api/v1/auth/login", data={"email": BUYER, "password": DEMO_PASSWORD})["access"]
        order = self.api(
            "/api/v1/orders", buyer, {"event": event_id, "items": [{"ticket_type": tier_id, "quantity": 1}]}
        )
        payment = self.api(f"/api/v1/orders/{order['id']}/pay", buyer, {})["payment"]
        paid = self.api(f"/api/v1/payments/test/{payment['id']}/complete", buyer, {})["order"]["status"]
        if paid != "paid":
            raise CheckFailed(f"the test gateway left the order {paid}")

        self.get("/admin/events/event/?q=" + urllib.parse.quote(title))
        self.click(self.visible(f"#result_list input.action-select[value='{event_id}']"))
        Select(self.driver.find_element(By.CSS_SELECTOR, "select[name='action']")).select_by_value("cancel_events")
        self.click(self.driver.find_element(By.CSS_SELECTOR, "#changelist-form button[name='index']"))
        message = self.visible(".messagelist", "the cancel action's message").text
        if "cancelled" not in message:
            raise CheckFailed(f"the cancel action said {message!r}")
        self.open_event(title)
        progress = self.visible(".eventflow-refund-progress", "the refunds' progress on the event's page")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", progress)
        self.shot("event-cancelled-refunds")
        if "1 refunded" not in progress.text:
            raise CheckFailed(f"the event's page says {progress.text!r}")
        status = self.api(f"/api/v1/orders/{order['id']}", buyer)["status"]
        if status != "refunded":
            raise CheckFailed(f"the buyer's order is {status} after the event was cancelled")
        return f"order {order['id'][:8]} paid, event cancelled in the admin: {progress.text.strip()!r}; order {status}"

    def check_payments_and_payouts(self) -> str:
        """The platform admin's money pages: payments (with the test gateway's actions) and payouts."""
        self.get("/admin/orders/payment/")
        rows = len(self.all("#result_list tbody tr"))
        actions = [o.get_attribute("value") for o in self.all("select[name='action'] option")]
        if not rows or "complete_test_payments" not in actions:
            raise CheckFailed(f"Payments: {rows} rows, actions {actions}")
        self.shot("payments-changelist")
        self.get("/admin/orders/payout/")
        table = self.visible("#payouts", "the payouts table")
        self.styles_loaded()
        lines = [row.text for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        if not any("Demo Live" in line for line in lines):
            raise CheckFailed(f"the payouts page lists {lines}")
        self.shot("payouts")
        return f"{rows} payments; payouts: {lines[0]!r}"

    def check_seats_discounts_and_door(self) -> str:
        """Issue 11 in the back office: a seat map imported from a CSV file on the event's page, a
        discount code added with its form, check-in staff named by email; the API then shows all
        three, and the waiting-list and check-in pages open."""
        token = self.api("/api/v1/auth/login", data={"email": ORGANIZER, "password": DEMO_PASSWORD})["access"]
        tag = secrets.token_hex(3)
        starts = datetime.now(ZoneInfo("Europe/Berlin")).replace(microsecond=0) + timedelta(days=60)
        event = self.api(
            "/api/v1/events",
            token,
            {
                "title": f"Seated recital {tag}",
                "venue_name": "Kammermusiksaal",
                "city": "Berlin",
                "country": "DE",
                "timezone": "Europe/Berlin",
                "currency": "EUR",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
            },
        )
        self.api(
            f"/api/v1/events/{event['id']}/ticket-types",
            token,
            {"name": "Stalls", "price_cents": 3000, "capacity": 0, "seated": True},
        )
        csv_file = self.screenshots / f"seats-{tag}.csv"
        csv_file.write_text(
            "section,row,number,ticket_type\n" + "".join(f"Stalls,{r},{n},Stalls\n" for r in "AB" for n in range(1, 5))
        )
        self.get(f"/admin/events/event/{event['id']}/import-seats")
        self.styles_loaded()
        self.visible("input[type='file']", "the CSV file input").send_keys(str(csv_file))
        self.click(self.visible("input[type='submit'][value='Import seats']", "the “Import seats” button"))
        seats = self.wait(
            lambda d: len(self.api(f"/api/v1/events/{event['id']}/seats", token)) or None, "the imported seats"
        )
        if seats != 8:
            raise CheckFailed(f"the event has {seats} seats after importing 8")
        self.shot("seats-imported")

        self.get("/admin/events/discountcode/add/")
        self.styles_loaded()
        Select(self.visible("#id_event", "the discount code's event")).select_by_value(str(event["id"]))
        self.visible("#id_code").send_keys(f"RECITAL{tag.upper()}")
        self.visible("#id_percent_off").send_keys("15")
        self.click(self.visible("input[name='_save']", "the “Save” button"))
        self.wait(lambda d: "/add/" not in d.current_url, "the discount code saved")
        codes = self.api(f"/api/v1/events/{event['id']}/discount-codes", token)["results"]
        if [(c["code"], c["percent_off"]) for c in codes] != [(f"RECITAL{tag.upper()}", 15)]:
            raise CheckFailed(f"the API lists the event's codes as {codes}")
        self.shot("discount-code-saved")

        staff = f"door-{tag}@example.com"
        self.get("/admin/checkin/checkinstaff/add/")
        self.visible("#id_email", "the check-in staff's email").send_keys(staff)
        self.click(self.visible("input[name='_save']", "the “Save” button"))
        self.wait(lambda d: "/add/" not in d.current_url, "the check-in staff saved")
        named = [row["user"]["email"] for row in self.api("/api/v1/organizers/me/check-in-staff", token)["results"]]
        if staff not in named:
            raise CheckFailed(f"the API lists check-in staff {named}")
        for path in ("/admin/orders/waitlistentry/", "/admin/checkin/checkin/", "/admin/events/seat/"):
            self.get(path)
            self.visible("#changelist", f"the changelist at {path}")
            self.styles_loaded()
        return f"8 seats imported, code RECITAL{tag.upper()} (15 %), check-in staff {staff}"

    def check_webhooks_back_office(self) -> str:
        """Issue 12 in the back office: the organizer adds a webhook endpoint with its form (its signing
        secret shown once, never in the list), sends it a test ping, sees the delivery on the endpoint's
        page (a headed table, in local time) and in the read-only delivery log, and replays it; both lists
        fit the 1400 px window, without an organizer column. The URL is on a public name resolved only at
        send time, so the sends fail, and that is fine here. Last, the organizer deletes the endpoint on
        its delete page: its delivery log goes with it (read-only deliveries do not stand in the way)."""
        self.fresh_session(ORGANIZER)
        tag = secrets.token_hex(3)
        url = f"https://hooks.example.com/eventflow/{tag}"
        self.get("/admin/")
        self.click(self.visible("#content-main a[href$='/webhooks/webhookendpoint/']", "the “Webhook endpoints” link"))
        self.visible("#changelist", "the webhook endpoints changelist")
        self.styles_loaded()
        self.click(self.visible(".object-tools a.addlink", "the “Add webhook endpoint” button"))
        self.visible("#webhookendpoint_form", "the endpoint form")
        if self.all("#id_organizer"):
            raise CheckFailed("an organizer's endpoint form offers to pick the organizer")
        self.visible("#id_url").send_keys(url)
        for event_type in ("order.paid", "order.refunded"):
            self.click(self.visible(f"input[name='events'][value='{event_type}']", f"the {event_type} checkbox"))
        self.visible("#id_description").send_keys(f"Browser check {tag}")
        self.shot("webhook-endpoint-add")
        self.click(self.visible("input[name='_save']", "the “Save” button"))
        self.wait(
            lambda d: "/add/" not in d.current_url or d.find_elements(By.CSS_SELECTOR, ".errornote"),
            "the endpoint saved",
        )
        errors = [e.text for e in self.all(".errornote, .errorlist li")]
        if errors:
            raise CheckFailed(f"adding {url} was refused: {errors}")
        notes = self.messages()
        secret = next((m.split(": ", 1)[1].strip() for m in notes if m.startswith("Signing secret")), "")
        if len(secret) < 16:
            raise CheckFailed(f"no signing secret shown after adding the endpoint: {notes}")
        rows = [r for r in self.all("#result_list tbody tr") if url in r.text]
        self.fits("#result_list", ["short_url", "event_list", "is_active", "failures", "created"], "endpoints list")
        if len(rows) != 1:
            raise CheckFailed(f"the changelist shows {len(rows)} row(s) for {url}")
        if "order.paid, order.refunded" not in rows[0].text:
            raise CheckFailed(f"the endpoint's row reads {rows[0].text!r}")
        if secret in self.visible("#result_list").text:
            raise CheckFailed("the signing secret is shown in the endpoints list")
        self.shot("webhook-endpoint-added")
        link = rows[0].find_element(By.CSS_SELECTOR, "th a").get_attribute("href")
        endpoint_id = int(re.search(r"/webhookendpoint/(\d+)/change/", link).group(1))
        self.get("/admin/webhooks/webhookendpoint/")
        if secret in self.driver.page_source:
            raise CheckFailed("the signing secret is still on the endpoints list when it is opened again")

        self.click(self.visible(f"#result_list input.action-select[value='{endpoint_id}']"))
        self.run_action("ping")
        pinged = self.messages()
        if not any("Pings queued" in m for m in pinged):
            raise CheckFailed(f"the “Send a test ping” action said {pinged}")
        self.get(link.removeprefix(self.base))
        self.visible("#webhookendpoint_form")
        self.styles_loaded()
        if secret in self.driver.page_source:
            raise CheckFailed("the endpoint's page shows the whole signing secret")
        hint = self.visible(".field-secret_hint .readonly", "the secret's hint").text
        if hint != f"…{secret[-4:]}":
            raise CheckFailed(f"the secret's hint reads {hint!r}, not …{secret[-4:]}")
        url_width = self.visible("#id_url").size["width"]
        if url_width < 300:
            raise CheckFailed(f"the endpoint's URL input is {url_width} px wide")
        deliveries = self.visible(".field-recent_deliveries table", "the latest deliveries table")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", deliveries)
        headings = [h.text for h in deliveries.find_elements(By.CSS_SELECTOR, "thead th")]
        if len(headings) != 6 or not all(headings):
            raise CheckFailed(f"the latest deliveries table is headed {headings}")
        lines = [r.text for r in deliveries.find_elements(By.CSS_SELECTOR, "tbody tr")]
        if not any(" ping " in f" {line} " for line in lines):
            raise CheckFailed(f"the endpoint's latest deliveries are {lines}")
        if any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00", line) for line in lines):
            raise CheckFailed(f"the latest deliveries show raw UTC timestamps: {lines}")
        self.shot("webhook-endpoint-deliveries")

        log = "/admin/webhooks/webhookdelivery/?q=" + urllib.parse.quote(url)
        self.get(log)
        self.visible("#changelist", "the delivery log")
        self.styles_loaded()
        if self.all(".object-tools a.addlink"):
            raise CheckFailed("the delivery log offers to add a delivery")
        logged = self.all("#result_list tbody tr")
        self.fits("#result_list", ["created", "endpoint_url", "status", "attempts", "response"], "delivery log")
        if len(logged) != 1 or "ping" not in logged[0].text:
            raise CheckFailed(f"the delivery log lists {[r.text for r in logged]} for {url}")
        self.shot("webhook-delivery-log")
        self.click(logged[0].find_element(By.CSS_SELECTOR, "th a"))
        payload = self.visible(".field-payload .readonly", "the delivery's payload").text
        if self.all("input[name='_save'], #webhookdelivery_form input[type='text'], #webhookdelivery_form textarea"):
            raise CheckFailed("a delivery's page has fields to edit or a Save button")
        if '"ping"' not in payload or url not in payload:
            raise CheckFailed(f"the delivery's payload reads {payload[:200]!r}")
        self.get(log)
        self.click(self.visible("#result_list tbody input.action-select", "the delivery's checkbox"))
        self.run_action("replay")
        replayed = self.messages()
        if not any("1 delivery(ies) queued again" in m for m in replayed):
            raise CheckFailed(f"the “Replay” action said {replayed}")
        attempts = self.visible("#result_list tbody tr td.field-attempts").text
        self.shot("webhook-delivery-replayed")

        self.get(f"/admin/webhooks/webhookendpoint/{endpoint_id}/delete/")
        summary = self.visible("#content", "the endpoint's delete page").text
        if "permission" in summary or not self.all("#content form input[type='submit']"):
            raise CheckFailed(f"the endpoint's delete page reads {summary[:300]!r}")
        if "Webhook deliveries: 1" not in summary:
            raise CheckFailed(f"the endpoint's delete page does not count its delivery: {summary[:300]!r}")
        self.shot("webhook-endpoint-delete")
        self.click(self.visible("#content form input[type='submit']", "the confirm button"))
        removed = self.messages()
        if not any("was deleted successfully" in m for m in removed):
            raise CheckFailed(f"deleting the endpoint said {removed}")
        if any(url in r.text for r in self.all("#result_list tbody tr")):
            raise CheckFailed(f"{url} is still listed after its deletion")
        self.get(log)
        if self.all("#result_list tbody tr"):
            raise CheckFailed("the endpoint's deliveries are still in the log after its deletion")
        return (
            f"added {url} (secret shown once, …{secret[-4:]} on its page, not in the list); ping in its latest "
            f"deliveries (headed {headings}) and the read-only log; replayed: {replayed[0]!r} (attempts {attempts}); "
            "both lists fit the window; deleted with its delivery log"
        )

    def check_admin_two_factor_login(self) -> str:
        """Issue 13's admin login with two-factor authentication, for a staff user made for the check
        (registered through the API, made staff on its page by the platform admin, 2FA turned on through
        the API): the right password alone is refused, so is a wrong code, the code of the next TOTP step
        signs in, and the same code a second time is refused; 2FA is then turned off with a recovery code.

        Time is no race: enable takes the code of the current step S (the server takes codes of S-1..S+1
        that are later than the last one taken), and the sign-in uses the code of S+1, accepted from now
        until a minute after S began; turning it off takes a recovery code, which has no clock."""
        tag = secrets.token_hex(3)
        email, password = f"staff-2fa-{tag}@example.com", f"Bc-{secrets.token_urlsafe(12)}"
        self.api("/api/v1/auth/register", data={"email": email, "password": password, "name": f"Door Staff {tag}"})
        self.fresh_session(ADMIN)
        self.get("/admin/accounts/user/?q=" + urllib.parse.quote(email))
        self.click(self.visible("#result_list a[href*='/accounts/user/']", f"{email} in the Users changelist"))
        staff_box = self.visible("#id_is_staff", "the “Staff status” checkbox")
        if not staff_box.is_selected():
            self.click(staff_box)
        self.click(self.visible("input[name='_save']", "the “Save” button"))
        self.wait(lambda d: "/change/" not in d.current_url, "the user saved as staff")

        token = self.api("/api/v1/auth/login", data={"email": email, "password": password})["access"]
        setup = self.api("/api/v1/auth/2fa/setup", token, {})
        totp = pyotp.TOTP(setup["secret"])
        step = int(time.time() // totp.interval)
        self.api("/api/v1/auth/2fa/enable", token, {"otp": totp.at(step * totp.interval)})
        valid = {totp.at((step + k) * totp.interval) for k in range(-1, 4)}
        wrong = next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in valid)
        next_code = totp.at((step + 1) * totp.interval)

        self.get("/admin/login/")
        self.driver.delete_all_cookies()

        def attempt(code: str) -> None:
            self.get("/admin/login/")
            self.visible("#id_username").send_keys(email)
            self.driver.find_element(By.ID, "id_password").send_keys(password)
            if code:
                self.visible("#id_otp", "the “Two-factor code” field").send_keys(code)
            self.click(self.driver.find_element(By.CSS_SELECTOR, '#login-form [type="submit"]'))

        def refused(code: str, expected: str, what: str) -> str:
            attempt(code)
            note = self.visible(".errornote", f"the error after {what}").text
            if "/admin/login/" not in self.driver.current_url or self.all("#user-tools"):
                raise CheckFailed(f"{what} signed in")
            if expected not in note:
                raise CheckFailed(f"{what} was refused with {note!r}")
            return note

        no_code = refused("", "Enter the code from your authenticator app", "the right password without a code")
        self.styles_loaded()
        self.shot("admin-login-2fa-code-required")
        refused(wrong, "This two-factor code is wrong", "a wrong code")
        attempt(next_code)
        self.wait(
            lambda d: "/admin/login/" not in d.current_url or d.find_elements(By.CSS_SELECTOR, ".errornote"),
            "the admin index after signing in with the code",
        )
        if "/admin/login/" in self.driver.current_url:
            raise CheckFailed(f"the right code was refused: {self.visible('.errornote').text!r}")
        self.visible("#user-tools", "the signed-in user tools")
        self.shot("admin-signed-in-with-2fa")
        self.driver.delete_all_cookies()
        refused(next_code, "This two-factor code is wrong, expired or already used", "the same code again")

        self.api("/api/v1/auth/2fa/disable", token, {"otp": setup["recovery_codes"][0]})
        self.api("/api/v1/auth/login", data={"email": email, "password": password})  # no code needed any more
        self.driver.delete_all_cookies()
        return (
            f"{email} made staff; password alone: {no_code!r}; a wrong code and the used code again refused; "
            "the next step's code signed in; 2FA off again (recovery code), password alone signs in"
        )

    def check_users_data_requests(self) -> str:
        """Issue 13's data requests in the Users changelist: the platform admin is offered “Export personal
        data” and “Delete personal data”; Export on the demo buyer downloads a JSON document (and the
        answer is application/json, an attachment, not cached) and is noted in the user's history; Delete
        on an account registered for the check first shows a confirmation page (the account, what will
        happen to it), “No, take me back” leaves it be, and “Yes” anonymises it."""
        self.fresh_session(ADMIN)
        self.get("/admin/accounts/user/?q=" + urllib.parse.quote(BUYER))
        offered = {o.get_attribute("value"): o.text for o in self.all("select[name='action'] option")}
        wanted = {
            "export_personal_data": "Export personal data (data request)",
            "delete_personal_data": "Delete personal data (data request)",
        }
        missing = {k: v for k, v in wanted.items() if offered.get(k) != v}
        if missing:
            raise CheckFailed(f"the Users actions are {offered}, without {missing}")
        row = next((r for r in self.all("#result_list tbody tr") if BUYER in r.text), None)
        if row is None:
            raise CheckFailed(f"the Users changelist does not find {BUYER}")
        downloads = Path(tempfile.mkdtemp(prefix="downloads-", dir=self.profile))
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        self.click(row.find_element(By.CSS_SELECTOR, "input.action-select"))
        self.run_action("export_personal_data")
        files = self.wait(
            lambda d: [f for f in downloads.iterdir() if f.suffix == ".json"] or None, "the export's download"
        )
        document = json.loads(files[0].read_text())
        if document.get("profile", {}).get("email") != BUYER:
            raise CheckFailed(f"the downloaded {files[0].name} is not {BUYER}'s: {str(document)[:200]}")
        user_id = document["profile"]["id"]
        if not re.fullmatch(rf"eventflow-personal-data-{user_id}-\d{{8}}\.json", files[0].name):
            raise CheckFailed(f"the download is named {files[0].name}")
        answer = self.driver.execute_async_script(POST_CHANGELIST_FORM_JS)
        if (
            answer["status"] != 200
            or not answer["type"].startswith("application/json")
            or not answer["disposition"].startswith("attachment")
            or "no-store" not in answer["cache"]
        ):
            said = re.findall(r'<li class="(?:error|warning|info|success)">(.*?)</li>', answer["body"], re.S)
            headers = {k: v for k, v in answer.items() if k != "body"}
            raise CheckFailed(f"the export answered {headers}, saying {said}")
        self.shot("users-export-personal-data")
        self.get(f"/admin/accounts/user/{user_id}/history/")
        history = self.visible("#change-history", "the user's history").text
        if "Exported personal data (data request)." not in history:
            raise CheckFailed(f"the user's history does not note the export: {history[:300]!r}")

        tag = secrets.token_hex(3)
        leaving = f"leaving-{tag}@example.com"
        self.api("/api/v1/auth/register", data={"email": leaving, "password": f"Bc-{secrets.token_urlsafe(12)}"})
        self.get("/admin/accounts/user/?q=" + urllib.parse.quote(leaving))
        self.click(self.visible("#result_list tbody input.action-select", f"{leaving}'s checkbox"))
        self.run_action("delete_personal_data")
        confirm = self.visible("body.delete-personal-data-confirmation #content", "the confirmation page").text
        self.styles_loaded()
        if leaving not in confirm or "orders are kept" not in confirm or "session" not in confirm:
            raise CheckFailed(f"the confirmation page reads {confirm[:400]!r}")
        self.shot("users-delete-personal-data-confirm")
        self.click(self.visible("a.cancel-link", "the “No, take me back” link"))
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#changelist"), "the Users changelist again")
        self.get("/admin/accounts/user/?q=" + urllib.parse.quote(leaving))
        if not any(leaving in r.text for r in self.all("#result_list tbody tr")):
            raise CheckFailed(f"{leaving} was changed though the confirmation was turned down")
        self.click(self.visible("#result_list tbody input.action-select", f"{leaving}'s checkbox"))
        self.run_action("delete_personal_data")
        self.click(
            self.visible(".delete-personal-data-confirmation #content form input[type='submit']", "the “Yes” button")
        )
        deleted = self.messages()
        if not any("Personal data of 1 account deleted" in m for m in deleted):
            raise CheckFailed(f"the “Delete personal data” action said {deleted}")
        if any(leaving in r.text for r in self.all("#result_list tbody tr")):
            raise CheckFailed(f"{leaving} is still listed after its personal data was deleted")
        self.shot("users-delete-personal-data")
        return (
            f"both actions offered; export of {BUYER}: {files[0].name} ({len(document)} sections), "
            f"{answer['type']}, noted in the history; {leaving}: {deleted[0]!r}"
        )

    def sign_out(self) -> str:
        self.get("/admin/")
        self.click(self.visible("#logout-form [type='submit']", "the “Log out” button"))
        self.wait(lambda d: "logout" in d.current_url, "the logged-out page")
        self.visible("#content")
        self.shot("admin-logged-out")
        return "signed out"

    def check_admin_sign_in(self) -> str:
        self.sign_in(ADMIN)
        return f"signed in as {ADMIN}"

    def check_users(self) -> str:
        self.get("/admin/accounts/user/")
        self.visible("#result_list")
        rows = self.all("#result_list tbody tr")
        if not rows:
            raise CheckFailed("the Users changelist has no rows")
        self.shot("users-changelist")
        link = self.driver.find_element(By.CSS_SELECTOR, "#result_list tbody tr th a")
        email = link.text
        self.click(link)
        self.visible("#user_form")
        self.styles_loaded()
        if not self.all("#user_form fieldset"):
            raise CheckFailed("the user's change page has no fieldsets")
        self.shot("user-change")
        return f"{len(rows)} users; opened {email}"

    def check_organizer_autocomplete(self) -> str:
        """The platform admin picks an event's organizer with the autocomplete widget (select2 + AJAX)."""
        self.get("/admin/events/event/add/")
        self.click(self.visible(".field-organizer .select2-selection", "the organizer autocomplete (select2)"))
        options = self.wait(
            lambda d: [
                o.text
                for o in d.find_elements(By.CSS_SELECTOR, ".select2-results__option[role=option]")
                if o.text and "loading-results" not in (o.get_attribute("class") or "")
            ],
            "autocomplete results from /admin/autocomplete/",
        )
        self.shot("event-add-autocomplete")
        self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        return f"organizer autocomplete offers {options}"

    def check_swagger(self) -> str:
        self.get("/api/docs")
        self.visible(".swagger-ui .info .title", "Swagger UI's title")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"), "Swagger UI's operations (.opblock)")
        self.styles_loaded()
        title = self.driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        operations = len(self.all(".opblock"))
        self.shot("swagger-ui")
        summary = self.wait(
            lambda d: next(
                (
                    s
                    for s in d.find_elements(By.CSS_SELECTOR, ".opblock-get .opblock-summary")
                    if s.find_elements(By.CSS_SELECTOR, '[data-path="/api/v1/events"]')
                ),
                None,
            ),
            "the GET /api/v1/events operation",
        )
        block = summary.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock')][1]")
        self.click(summary.find_element(By.CSS_SELECTOR, ".opblock-summary-path, .opblock-summary-control"))
        self.click(self.wait(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn")[0], "“Try it out”"))
        self.click(self.wait(lambda d: block.find_elements(By.CSS_SELECTOR, "button.execute")[0], "“Execute”"))
        status = self.wait(
            lambda d: next(
                (
                    s.text
                    for s in block.find_elements(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status")
                ),
                None,
            ),
            "the live response",
        )
        if not status.strip().startswith("200"):
            raise CheckFailed(f"GET /api/v1/events answered {status!r} in Swagger UI")
        body = block.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_description pre").text
        if '"count"' not in body:
            raise CheckFailed(f"unexpected response body: {body[:200]!r}")
        self.driver.execute_script(
            "arguments[0].scrollIntoView({block: 'start'});",
            block.find_element(By.CSS_SELECTOR, ".live-responses-table"),
        )
        self.shot("swagger-try-it-out")
        return f"{title.splitlines()[0]!r}: {operations} operations; Try it out → Execute GET /api/v1/events: 200"

    def check_redoc(self) -> str:
        self.get("/api/redoc")
        heading = self.wait(
            lambda d: next((h for h in d.find_elements(By.CSS_SELECTOR, "h1") if "EventFlow API" in h.text), None),
            "ReDoc's API title",
            timeout=self.timeout * 2,
        )
        menu = self.wait(
            lambda d: [i for i in d.find_elements(By.CSS_SELECTOR, "[role='menuitem'], li[data-item-id]") if i.text],
            "ReDoc's menu",
        )
        self.wait(
            lambda d: d.find_elements(By.XPATH, "//*[not(*) and normalize-space(.)='Search the catalogue']"),
            "the events_list operation (its summary, “Search the catalogue”)",
        )
        self.styles_loaded()
        self.shot("redoc")
        # ReDoc's search runs in a web worker started from a blob: URL (worker-src blob:).
        self.visible("input.search-input, input[placeholder^='Search']", "ReDoc's search box").send_keys("availability")
        results_css = "[data-role='search:results'] li"
        self.wait(
            lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, results_css) if "Live availability" in r.text],
            "ReDoc's search results (its search worker)",
        )
        searched = f"; search 'availability' found {len(self.all(results_css))} item(s)"
        self.shot("redoc-search")
        return f"{heading.text.splitlines()[0]!r}, {len(menu)} menu items, “Search the catalogue” shown{searched}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--screenshots", help="directory for the PNG screenshots (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each thing on a page")
    parser.add_argument(
        "--allow-violation",
        action="append",
        default=[],
        metavar="DIRECTIVE=URL",
        help="a known violation that does not fail the check, e.g. img-src=https://cdn.example/logo.svg (repeatable)",
    )
    args = parser.parse_args()
    allowed = []
    for item in args.allow_violation:
        directive, sep, url = item.partition("=")
        if not sep or not directive or not url:
            parser.error(f"--allow-violation wants DIRECTIVE=URL, not {item!r}")
        allowed.append((directive.strip(), url.strip()))
    screenshots = Path(args.screenshots or tempfile.mkdtemp(prefix="eventflow-screenshots-"))
    screenshots.mkdir(parents=True, exist_ok=True)
    # SIGTERM (CI cancelling the job) ends through the finally below, so the browser is closed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    print(f"== browser check of {args.base_url} (screenshots: {screenshots})", flush=True)
    check = BrowserCheck(args.base_url, args.chromium, args.chromedriver, screenshots, args.timeout, allowed)
    try:
        print(
            f"   {check.driver.capabilities.get('browserVersion')} headless, chromedriver "
            f"{check.driver.capabilities.get('chrome', {}).get('chromedriverVersion', '?').split()[0]}",
            flush=True,
        )
        check.run("csp-header", check.check_csp_header)
        check.run("violation-detector-self-test", check.check_detector)
        check.run("front-door", check.check_front_door)
        check.run("admin-login-page", check.check_admin_login_page)
        check.run("admin-sign-in-organizer", check.check_organizer_sign_in)
        check.run("events-changelist", check.check_events_changelist)
        check.run("events-search", check.check_events_search)
        check.run("event-change-inline-add-another", check.check_event_change_page)
        check.run("event-add-datetime-widgets", check.check_event_add_page)
        check.run("back-office-sales-at-a-glance", check.check_sales_at_a_glance)
        check.run("back-office-create-and-publish", check.check_create_and_publish_event)
        check.run("back-office-cancel-event-refunds-buyers", check.check_cancel_and_refund)
        check.run("back-office-seats-discounts-door", check.check_seats_discounts_and_door)
        check.run("back-office-webhooks", check.check_webhooks_back_office)
        check.run("admin-sign-out-organizer", check.sign_out)
        check.run("admin-sign-in-admin", check.check_admin_sign_in)
        check.run("users-changelist-and-change", check.check_users)
        check.run("users-data-requests-export-delete", check.check_users_data_requests)
        check.run("event-add-organizer-autocomplete", check.check_organizer_autocomplete)
        check.run("payments-and-payouts", check.check_payments_and_payouts)
        check.run("admin-sign-out-admin", check.sign_out)
        check.run("admin-login-two-factor", check.check_admin_two_factor_login)
        check.run("swagger-ui-try-it-out", check.check_swagger)
        check.run("redoc", check.check_redoc)
    finally:
        check.close()
    failed = [name for name, ok, _ in check.results if not ok]
    if check.console_notes:
        print("-- other console errors (not failing the check):")
        for note in sorted(set(check.console_notes)):
            print(f"   {note}")
    took = time.monotonic() - started
    print(f"== screenshots in {screenshots}")
    if failed:
        print(f"browser check: FAILED {len(failed)} of {len(check.results)} ({', '.join(failed)}) in {took:.0f}s")
        return 1
    print(f"browser check: all {len(check.results)} checks passed in {took:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
