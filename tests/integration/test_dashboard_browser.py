"""The dashboard in Debian's headless Chromium (driven by Playwright, never a downloaded
browser) against the real store process fed through Kafka with a known week: the page loads
with no console error, shows the API's numbers, drills down to the reports behind a number,
filters, keeps the key out of URLs and logs, and calls nothing but its own origin.

The screenshot is kept as a test artefact in test-artifacts/dashboard.png."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from core.kafka import ensure_topics
from core.settings import Settings
from schemas import topic_names
from tests.conftest import isolated_settings
from tests.support import store_seed as seed
from tests.support.reference import LONE_EVENT_FIGURES
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Store:
    settings: Settings
    keys: dict[str, str]
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys['monitor']}"}
        response = httpx.get(self.settings.query_url + path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def store(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The real store process (its own embedded ClickHouse) after its sink stored the week."""
    home = tmp_path_factory.mktemp("dashboard-home")
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = isolated_settings(home, kafka_bootstrap=bootstrap, topic_prefix=prefix)
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    keys = seed.store_keys(settings)
    seed.publish(bootstrap, names)
    log = home / "store.log"
    with running_module(
        "services.store", service_env(settings), f"{settings.query_url}/readyz", log
    ):
        seed.wait_stored(bootstrap, prefix)
        yield Store(settings, keys, log)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "run deploy/browser.sh (./run-tests does) to install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Session:
    page: Page
    errors: list[str]
    requests: list[Request]


@pytest.fixture
def session(browser: Browser) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    requests: list[Request] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request))
    try:
        yield Session(page, errors, requests)
    finally:
        context.close()


def open_dashboard(store: Store, page: Page, key: str, week: str = seed.WEEK) -> None:
    page.goto(f"{store.settings.query_url}/dashboard#key={key}&week={week}")
    page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=30_000)


def shown_weekly_rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.eval_on_selector_all(
        "#weekly tbody tr[data-area]",
        """rows => rows.map(tr => {
            const row = {area: tr.dataset.area, party: tr.dataset.party};
            for (const td of tr.querySelectorAll('td[data-field]')) {
                const button = td.querySelector('button');
                row[td.dataset.field] = Number(button ? button.dataset.value
                                                      : td.textContent.replace(/,/g, ''));
            }
            return row;
        })""",
    )
    return rows


def test_the_dashboard_shows_the_numbers_of_the_api(store: Store, session: Session) -> None:
    page = session.page
    open_dashboard(store, page, store.keys["monitor"])
    assert page.get_attribute("body", "data-state") == "ready", page.inner_text("#message")

    weekly = store.get("/v1/metrics/weekly", week=seed.WEEK)["rows"]
    assert weekly
    assert sorted(shown_weekly_rows(page), key=lambda r: (r["area"], r["party"])) == weekly
    for field in ("violations", "verified", "exempt"):
        api_field = {"violations": "violations", "verified": "violations_verified",
                     "exempt": "violations_exempt"}[field]  # fmt: skip
        shown = page.get_attribute(f"#sum-{field}", "data-value")
        assert shown == str(sum(r[api_field] for r in weekly)), field
    assert page.inner_text("#sum-killed") == str(sum(r["killed"] for r in weekly))
    # events next to violations (CONTRACT 9), from the same rows
    for card, field in (("incidents", "incidents"), ("corroborated", "incidents_corroborated")):
        assert page.get_attribute(f"#sum-{card}", "data-value") == str(
            sum(r[field] for r in weekly)
        ), card

    report = store.get(f"/v1/weekly-report/{seed.WEEK}")
    madaya = next(b for b in report["besieged"] if b["area"] == "madaya")
    row = page.locator("#besieged tr[data-area=madaya]")
    assert row.locator("td[data-field=beneficiaries]").inner_text() == "400"
    assert row.locator("td[data-field=deliveries_completed] button").inner_text() == str(
        madaya["deliveries_completed"]
    )
    assert row.locator("td[data-field=coverage]").get_attribute("data-value") == str(
        madaya["coverage"]
    )
    days = row.locator("td[data-field=days_since_last_completed_delivery]").inner_text()
    assert days == str(madaya["days_since_last_completed_delivery"])
    assert page.locator("#besieged tbody tr").count() == len(report["besieged"])
    shown_alerts = page.eval_on_selector_all(
        "#alerts li[data-fingerprint]", "items => items.map(li => li.dataset.fingerprint)"
    )
    assert shown_alerts == [a["fingerprint"] for a in report["alerts"]]
    approval = page.get_attribute("#sum-approval", "data-value")
    assert approval == str(report["access"]["cumulative_approval_rate"])

    # the map: one mark per area, sized by that area's violations this week
    marks = page.eval_on_selector_all(
        "#map g[data-area]", "gs => Object.fromEntries(gs.map(g => [g.dataset.area, "
        "Number(g.dataset.violations)]))",
    )  # fmt: skip
    per_area: dict[str, int] = {}
    for r in weekly:
        per_area[r["area"]] = per_area.get(r["area"], 0) + r["violations"]
    assert len(marks) == len(store.get("/v1/reference/areas"))
    assert {a: n for a, n in marks.items() if n} == {a: n for a, n in per_area.items() if n}

    # the coverage layer: an area nobody reported from is hatched, unlike the grey of an
    # area with reports but no violation (Fouah: deliveries only)
    coverage = store.get("/v1/metrics/coverage", week=seed.WEEK)["rows"]
    looks = page.eval_on_selector_all(
        "#map g[data-area] circle.area", "cs => Object.fromEntries(cs.map(c => "
        "[c.closest('g').dataset.area, [c.classList.contains('unmonitored'), "
        "getComputedStyle(c).fill]]))",
    )  # fmt: skip
    assert {a: not silent for a, (silent, _) in looks.items()} == {
        r["area"]: r["monitored"] for r in coverage
    }
    assert all("#hatch" in fill for silent, fill in looks.values() if silent)
    assert not per_area.get("fouah")
    assert looks["fouah"][0] is False
    assert "#hatch" not in looks["fouah"][1]

    # the trends: eight weeks ending with the chosen one, per party, from the API
    weeks = page.get_attribute("#trends", "data-weeks").split(",")  # type: ignore[union-attr]
    assert (len(weeks), weeks[-1], weeks[-2]) == (8, seed.WEEK, seed.PREVIOUS)
    datasets = page.evaluate(
        "() => Object.fromEntries(Chart.getChart('trend-party').data.datasets"
        ".map(d => [d.label, d.data]))"
    )
    expected: dict[str, list[int]] = {}
    party_names = {p["code"]: p["name"] for p in store.get("/v1/reference/parties")}
    for i, week in enumerate(weeks):
        for r in store.get("/v1/metrics/weekly", week=week)["rows"]:
            # the legend names the party
            expected.setdefault(party_names[r["party"]], [0] * len(weeks))[i] += r["violations"]
    assert datasets == expected

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    print(f"screenshot: {ARTIFACTS / 'dashboard.png'}")
    assert session.errors == []


LABEL_BOXES = """() => [...document.querySelectorAll('#map text.label')].map(t => {
    const b = t.getBBox();
    return {area: t.dataset.area || null, text: t.firstChild.textContent, x: b.x, y: b.y,
            w: b.width, h: b.height, title: t.querySelector('title')?.textContent || '',
            leader: t.dataset.leader === 'true'};
})"""


def overlapping(boxes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    ]  # fmt: skip


def test_the_map_draws_syria_its_neighbours_and_a_label_per_area(
    store: Store, session: Session
) -> None:
    """Natural Earth's borders and coastline (vendored), every area inside Syria's outline,
    every area labelled with its name (code on hover), and no two labels overlapping at the
    default zoom, nor after zooming in."""
    page = session.page
    open_dashboard(store, page, store.keys["monitor"])
    assert page.get_attribute("body", "data-state") == "ready", page.inner_text("#message")
    countries = page.eval_on_selector_all(
        "#map path.land[data-country]", "ps => ps.map(p => p.dataset.country)"
    )
    assert {"Syria", "Lebanon", "Turkey", "Iraq", "Jordan", "Israel"} <= set(countries)
    lengths = page.evaluate(
        "() => ['border', 'coast'].map(c => document.querySelector('#map path.' + c)"
        ".getTotalLength())"
    )
    assert min(lengths) > 300, lengths  # drawn, and more than a stub
    inside = page.evaluate(
        """() => {
        const syria = document.querySelector('#map path.land.syria');
        return Object.fromEntries([...document.querySelectorAll('#map g[data-area] circle.area')]
            .map(c => [c.closest('g').dataset.area, syria.isPointInFill(
                new DOMPoint(Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))))]));
    }"""
    )
    areas = store.get("/v1/reference/areas")
    assert inside == {a["code"]: True for a in areas}

    labels = page.evaluate(LABEL_BOXES)
    by_area = {label["area"]: label for label in labels if label["area"]}
    assert sorted(by_area) == sorted(a["code"] for a in areas)
    for area in areas:
        label = by_area[area["code"]]
        assert label["text"], area
        assert area["name"].startswith(label["text"]), (label, area)
        assert label["title"] == f"{area['name']} · {area['code']}"
    assert overlapping(labels) == []
    inside_map = [b["x"] >= 0 and b["x"] + b["w"] <= 640 and b["y"] >= 0 and b["y"] + b["h"] <= 540
                  for b in labels]  # fmt: skip
    assert all(inside_map)
    assert {"Syria", "Lebanon", "Turkey"} <= {b["text"] for b in labels if not b["area"]}
    assert page.locator("#map text[data-crowded], #map text[data-outside]").count() == 0
    # the Damascus and Eastern Ghouta cluster cannot be labelled in place: leader lines
    assert any(by_area[code]["leader"] for code in ("jobar", "zamalka", "ein_terma", "saqba"))
    assert page.locator("#map line.leader").count() == sum(b["leader"] for b in labels)

    page.click("#zoom-in")
    page.wait_for_selector("#map[data-zoom='1.6']")
    assert "scale(1.6)" in (page.get_attribute("#map-geo", "transform") or "")
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.7)
    page.mouse.wheel(0, -200)
    page.wait_for_selector("#map[data-zoom='2']")
    zoomed = page.evaluate(LABEL_BOXES)
    shown = [b for b in zoomed if b["w"] > 0]  # not hidden (off the zoomed map, crowded)
    assert sum(1 for b in shown if b["area"]) >= 5
    assert overlapping(shown) == []
    page.click("#zoom-reset")
    page.wait_for_selector("#map[data-zoom='1']")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#map-panel").screenshot(path=str(ARTIFACTS / "dashboard-map.png"))
    assert session.errors == []


def test_a_number_drills_down_to_its_reports(store: Store, session: Session) -> None:
    page = session.page
    open_dashboard(store, page, store.keys["taskforce"])
    page.click("#weekly tr[data-area=madaya][data-party=gos] td[data-field=violations] button")
    page.wait_for_selector("#drill:not([hidden])")
    shown = page.eval_on_selector_all("#drill tbody tr", "rows => rows.map(r => r.dataset.report)")
    behind = store.get("/v1/reports", week=seed.WEEK, kind="violation", area="madaya",
                       party="gos", exempt="false")["reports"]  # fmt: skip
    assert shown == [r["report_id"] for r in behind] == ["v-gos-1"]

    page.click("#sum-exempt")
    page.wait_for_selector("#drill[data-total='2']")
    shown = page.eval_on_selector_all("#drill tbody tr", "rows => rows.map(r => r.dataset.report)")
    assert shown == ["v-isil-1", "v-raqqa-1"]

    page.click("#drill tbody tr[data-report=v-isil-1] button")
    page.wait_for_selector("#report-detail[data-report=v-isil-1]:not([hidden])")
    history = store.get("/v1/reports/v-isil-1")
    revisions = page.eval_on_selector_all(
        "#report-detail ol.timeline li", "lis => lis.map(li => Number(li.dataset.revision))"
    )
    assert revisions == [r["revision"] for r in history["revisions"]]
    fields = page.eval_on_selector_all(
        "#report-detail table.fields tr[data-field]",
        "trs => Object.fromEntries(trs.map(tr => [tr.dataset.field, "
        "[tr.querySelector('td').textContent, tr.querySelector('td').title]]))",
    )
    assert set(fields) == set(history["current"])
    assert fields == {name: [str(value), ""] for name, value in history["current"].items()}
    assert "verification unverified" in page.inner_text("#report-detail p.classification")
    assert session.errors == []


def test_the_drill_down_opens_beside_the_number_with_names(store: Store, session: Session) -> None:
    """The side panel opens next to the number clicked (not far down the page), names areas
    and parties (codes on hover), exports its list as CSV and offers the week's files."""
    page = session.page
    open_dashboard(store, page, store.keys["monitor"])
    button = page.locator(
        "#weekly tr[data-area=madaya][data-party=gos] td[data-field=violations] button"
    )
    button.click()
    page.wait_for_selector("#drill-panel:not([hidden]) #drill:not([hidden])")
    number = button.bounding_box()
    panel = page.locator("#drill-panel").bounding_box()
    assert number is not None
    assert panel is not None
    assert abs(panel["y"] - number["y"]) < 40, (panel, number)  # level with the number
    assert 0 < panel["x"] - (number["x"] + number["width"]) < 40 or (
        0 < number["x"] - (panel["x"] + panel["width"]) < 40
    ), (panel, number)  # beside it
    cells = page.eval_on_selector_all(
        "#drill tbody tr[data-report=v-gos-1] td span[title]",
        "spans => spans.map(s => [s.textContent, s.title])",
    )
    areas = {a["code"]: a["name"] for a in store.get("/v1/reference/areas")}
    parties = {p["code"]: p["name"] for p in store.get("/v1/reference/parties")}
    assert cells == [[areas["madaya"], "madaya"], [parties["gos"], "gos"]]
    assert page.inner_text("#drill-note").startswith("1\N{EN DASH}1 of 1 report")
    assert page.is_disabled("#drill-next")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-drill.png"))

    with page.expect_download() as saved:
        page.click("#drill-csv")
    lines = Path(saved.value.path()).read_text().splitlines()
    assert lines[0].startswith("report_id,kind,revision,org,occurred_at")
    assert len(lines) == 2
    assert lines[1].startswith("v-gos-1,")
    assert f",madaya,{areas['madaya']},gos,{parties['gos']}," in lines[1]

    editions = store.get("/v1/editions", week=seed.WEEK)
    shown = page.eval_on_selector_all("#files li", "lis => lis.map(li => li.dataset.edition)")
    assert shown == [""] + [str(e["edition"]) for e in editions]
    with page.expect_download() as saved:
        page.click("#files li[data-edition=''] button[data-format=hxl]")
    assert saved.value.suggested_filename == f"truce-weekly-{seed.WEEK}.hxl.csv"
    assert Path(saved.value.path()).read_text().splitlines()[1].startswith("#")  # HXL tags
    page.click("#drill-close")
    assert page.locator("#drill-panel").is_hidden()
    assert session.errors == []


def test_filters_and_the_key_stay_out_of_urls_and_logs(store: Store, session: Session) -> None:
    page = session.page
    key = store.keys["admin"]
    open_dashboard(store, page, key)
    assert key not in page.url  # the fragment is cleaned at once
    assert page.evaluate("sessionStorage.getItem('truce-key')") == key

    page.select_option("#area", "madaya")
    page.wait_for_selector("#besieged tbody tr:only-child[data-area=madaya]")
    page.wait_for_selector("body[data-state=ready]")
    assert "area=madaya" in page.url
    madaya = store.get("/v1/metrics/weekly", week=seed.WEEK, area="madaya")["rows"]
    assert sorted(shown_weekly_rows(page), key=lambda r: r["party"]) == madaya
    assert page.locator("#besieged tbody tr").count() == 1

    page.fill("#week", "2016-W08")
    page.dispatch_event("#week", "change")
    page.wait_for_selector("body[data-week='2016-W08'][data-state=ready]")
    previous = store.get("/v1/metrics/weekly", week=seed.PREVIOUS, area="madaya")["rows"]
    assert shown_weekly_rows(page) == previous

    origin = store.settings.query_url
    assert session.requests
    for request in session.requests:
        assert request.url.startswith(origin + "/"), request.url  # no CDN, no tiles
        assert key not in request.url
        if "/v1/" in request.url:
            assert request.headers["authorization"] == f"Bearer {key}"
    assert key not in store.log.read_text()
    assert session.errors == []


def test_a_refused_key_says_so(store: Store, session: Session) -> None:
    page = session.page
    open_dashboard(store, page, "truce_notakeyatall0000000000000000000")
    assert page.get_attribute("body", "data-state") == "error"
    assert "401" in page.inner_text("#message")
    assert page.evaluate("sessionStorage.getItem('truce-key')") is None
    partner = page.context.new_page()  # a new load, not just a new fragment
    open_dashboard(store, partner, store.keys["sarc"])
    assert partner.get_attribute("body", "data-state") == "error"
    assert "403" in partner.inner_text("#message")


def test_the_page_and_its_assets_need_no_key(store: Store) -> None:
    page = httpx.get(f"{store.settings.query_url}/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    for asset in ("dashboard.js", "dashboard.css", "vendor/chartjs/chart.umd.min.js",
                  "vendor/topojson-client/topojson-client.min.js",
                  "vendor/world-atlas/countries-50m.json"):  # fmt: skip
        response = httpx.get(f"{store.settings.query_url}/dashboard/static/{asset}")
        assert response.status_code == 200, asset
    assert "://" not in page.text.replace("http://www.w3.org", "")


def test_the_task_force_sees_candidates_and_what_ingest_answers_a_link(
    store: Store, session: Session
) -> None:
    """Two partners' reports of one shelling in 2016-W11 (a week no other test here reads):
    a task-force key gets the candidates panel; "link" posts the incident body to the real
    ingest API (another origin: CORS and the page's connect-src) and shows its answer,
    whatever it is (a refusal while the `incident` kind is not accepted)."""
    names = topic_names(store.settings.topic_prefix)
    first = seed.hit("c-sarc", "03-15", "madaya", "gos", killed=2)
    moment = seed.at("03-15").replace(minute=10)
    second = seed.hit("c-shrc", "03-15", "madaya", "gos", org="shrc", killed=3,
                      occurred_at=moment, received_at=moment)  # fmt: skip
    seed.publish_records(store.settings.bootstrap_servers, names, canonical=[first, second])
    seed.wait_stored(store.settings.bootstrap_servers, store.settings.topic_prefix)
    taskforce = {"Authorization": f"Bearer {store.keys['taskforce']}"}
    (candidate,) = httpx.get(
        store.settings.query_url + "/v1/incidents/candidates", params={"week": "2016-W11"},
        headers=taskforce,
    ).json()["candidates"]  # fmt: skip
    assert candidate["members"] == ["c-sarc", "c-shrc"]

    page = session.page
    open_dashboard(store, page, store.keys["monitor"], week="2016-W11")
    assert page.locator("#candidates-panel").is_hidden()  # monitors get no candidates

    log = store.log.parent / "ingest.log"
    with running_module(
        "services.ingest", service_env(store.settings), f"{store.settings.ingest_url}/readyz", log
    ):
        direct = httpx.post(store.settings.ingest_url + "/v1/reports",
                            json=candidate["incident"], headers=taskforce)  # fmt: skip
        tab = page.context.new_page()
        open_dashboard(store, tab, store.keys["taskforce"], week="2016-W11")
        assert tab.get_attribute("body", "data-state") == "ready"
        row = tab.locator('#candidates tbody tr[data-members="c-sarc c-shrc"]')
        assert row.locator("td").nth(2).inner_text() == "sarc, shrc"
        assert row.locator("td").nth(5).inner_text() == "3"  # the largest count
        row.locator("button.link").click()
        status = row.locator(".link-status.ok, .link-status.error")
        status.wait_for(timeout=15_000)
        shown = status.inner_text()
    if direct.is_success:
        assert shown == f"linked ({direct.status_code})"
    else:
        assert shown.startswith(f"refused ({direct.status_code}): "), shown
        assert direct.json()["detail"] in shown
        assert row.locator("button.link").is_enabled()  # it may be tried again


def test_the_side_panel_pages_past_a_hundred_reports(store: Store, session: Session) -> None:
    """105 reports in 2016-W13 (a week no other test here reads): the panel shows them a
    hundred at a time in the API's order, and its CSV holds all of them."""
    names = topic_names(store.settings.topic_prefix)
    start = seed.at("03-28")
    many = [
        seed.hit(f"p-{i:03d}", "03-28", "tadmur", "isil", occurred_at=start.replace(minute=0)
                 + timedelta(minutes=30 * i), received_at=start)
        for i in range(105)
    ]  # fmt: skip
    seed.publish_records(store.settings.bootstrap_servers, names, canonical=many)
    seed.wait_stored(store.settings.bootstrap_servers, store.settings.topic_prefix)
    page = session.page
    open_dashboard(store, page, store.keys["monitor"], week="2016-W13")
    assert page.get_attribute("body", "data-state") == "ready"
    filters = {"week": "2016-W13", "kind": "violation", "area": "tadmur"}
    page.evaluate(
        "filters => drill(filters, 'test', document.querySelector('#sum-violations'))", filters
    )
    page.wait_for_selector("#drill[data-total='105'][data-offset='0']")
    api = store.get("/v1/reports", **filters, limit=500)["reports"]
    assert [r["report_id"] for r in api] == [f"p-{i:03d}" for i in range(105)]
    shown = page.eval_on_selector_all("#drill tbody tr", "rows => rows.map(r => r.dataset.report)")
    assert shown == [r["report_id"] for r in api[:100]]
    assert page.inner_text("#drill-note").startswith("1\N{EN DASH}100 of 105")
    page.click("#drill-next")
    page.wait_for_selector("#drill[data-offset='100']")
    shown = page.eval_on_selector_all("#drill tbody tr", "rows => rows.map(r => r.dataset.report)")
    assert shown == [r["report_id"] for r in api[100:]]
    assert page.is_disabled("#drill-next")
    with page.expect_download() as saved:
        page.click("#drill-csv")
    lines = Path(saved.value.path()).read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [r["report_id"] for r in api]
    page.click("#drill-prev")
    page.wait_for_selector("#drill[data-offset='0']")
    assert session.errors == []


def test_restated_figures_are_marked(store: Store, session: Session) -> None:
    """Last in the module: an edition of the week, then late records; the figures that now
    differ from the edition are marked where the dashboard shows them."""
    taskforce = {"Authorization": f"Bearer {store.keys['taskforce']}"}
    answer = httpx.post(store.settings.query_url + "/v1/editions", json={"week": seed.WEEK},
                        headers=taskforce, timeout=60)  # fmt: skip
    assert answer.status_code == 201, answer.text
    seed.publish_records(store.settings.bootstrap_servers, topic_names(store.settings.topic_prefix),
                         envelopes=seed.LATE)  # fmt: skip
    seed.wait_stored(store.settings.bootstrap_servers, store.settings.topic_prefix)
    open_dashboard(store, session.page, store.keys["monitor"])
    page = session.page
    marked = page.eval_on_selector_all(
        "#weekly td.restated",
        "tds => tds.map(td => [td.closest('tr').dataset.area, td.closest('tr').dataset.party,"
        " td.dataset.field, td.dataset.restated, td.title])",
    )
    found = {(area, party, field): (was, title) for area, party, field, was, title in marked}
    reports = {
        ("madaya", "gos", "violations"), ("madaya", "gos", "killed"),
        ("daraya", "ru", "violations"), ("daraya", "ru", "violations_verified"),
        ("daraya", "ru", "killed"), ("daraya", "gos", "violations"),
        ("daraya", "gos", "violations_exempt"), ("daraya", "gos", "injured"),
    }  # fmt: skip
    # no incident links the seed's reports: each event figure moves with its report figure
    events = {(a, p, LONE_EVENT_FIGURES[f]) for a, p, f in reports if f in LONE_EVENT_FIGURES}
    assert set(found) == reports | events
    was, title = found[("madaya", "gos", "violations")]
    assert was == "1"
    assert "late-w9 (late)" in title
    assert "v-gos-2 (reclassified)" in found[("daraya", "gos", "violations")][1]
    note = page.locator("#restated-note")
    assert note.is_visible()
    assert "15 figure(s) of this week differ from edition 1" in note.inner_text()
    assert page.locator("#weekly td:not(.restated)[data-field]").count() > 0
    assert not session.errors, session.errors
