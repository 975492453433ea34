// Truce monitors' dashboard: every number comes from the query API with the monitor's key.
// The key arrives in the URL fragment (#key=..., never sent to the server) or by prompt and
// stays in sessionStorage. Week, area and party filters live in the fragment too, so a view
// can be shared (without the key).
"use strict";

const KEY_STORE = "truce-key";
const TREND_WEEKS = 8;
const PALETTE = ["#b3261e", "#1f5fa8", "#1e6b3a", "#8a5a00", "#6b3fa0", "#0f7c86", "#a83279",
  "#4d5b69", "#c76b00", "#2e8b57", "#7b2d26", "#36648b"];

const state = { key: "", week: "", area: "", party: "", areas: [], parties: [], charts: {}, session: null, geo: null, mapData: null, view: { k: 1, tx: 0, ty: 0 }, drill: null };
const $ = (selector) => document.querySelector(selector);

// -- ISO weeks ------------------------------------------------------------------------------
function mondayOf(week) {
  const [year, number] = week.split("-W").map(Number);
  const jan4 = Date.UTC(year, 0, 4);
  const weekday = (new Date(jan4).getUTCDay() + 6) % 7;
  return new Date(jan4 - weekday * 86400000 + (number - 1) * 7 * 86400000);
}

function isoWeek(date) {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = (day.getUTCDay() + 6) % 7;
  day.setUTCDate(day.getUTCDate() - weekday + 3); // the Thursday decides the year
  const year = day.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(year, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  const number = 1 + Math.round((day - firstThursday) / (7 * 86400000));
  return `${year}-W${String(number).padStart(2, "0")}`;
}

function weeksEndingAt(week, count) {
  const monday = mondayOf(week).getTime();
  const weeks = [];
  for (let i = count - 1; i >= 0; i -= 1) weeks.push(isoWeek(new Date(monday - i * 7 * 86400000)));
  return weeks;
}

// -- the API --------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value !== undefined && value !== null) query.set(name, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail || detail;
    } catch (_) { /* not problem+json */ }
    throw new ApiError(response.status, detail);
  }
  return response.json();
}

// -- key and fragment -----------------------------------------------------------------------
function readFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const key = fragment.get("key");
  if (key) {
    sessionStorage.setItem(KEY_STORE, key);
    fragment.delete("key");
  }
  state.key = sessionStorage.getItem(KEY_STORE) || "";
  state.week = fragment.get("week") || isoWeek(new Date());
  state.area = fragment.get("area") || "";
  state.party = fragment.get("party") || "";
  writeFragment();
}

function writeFragment() {
  const fragment = new URLSearchParams();
  fragment.set("week", state.week);
  if (state.area) fragment.set("area", state.area);
  if (state.party) fragment.set("party", state.party);
  history.replaceState(null, "", `${location.pathname}${location.search}#${fragment}`);
}

function askForKey() {
  const key = window.prompt("Truce API key (monitor, taskforce or admin)") || "";
  if (key) sessionStorage.setItem(KEY_STORE, key.trim());
  state.key = key.trim();
}

function showMessage(text) {
  const box = $("#message");
  box.textContent = text;
  box.hidden = !text;
}

// -- rendering helpers ----------------------------------------------------------------------
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

const svgNs = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}) {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

const fmt = (n) => (n === null || n === undefined ? "n/a" : Number(n).toLocaleString("en"));
const pct = (share) => (share === null || share === undefined ? "n/a" : `${(share * 100).toFixed(share < 0.1 ? 1 : 0)} %`);

// A number that lists the reports behind it when clicked.
function drillButton(value, filters, title) {
  const button = el("button", { type: "button", title: "List the reports behind this number" }, fmt(value));
  button.dataset.value = String(value);
  button.addEventListener("click", () => drill(filters, title, button));
  return button;
}

function areaName(code) {
  const area = state.areas.find((a) => a.code === code);
  return area ? area.name : code;
}

function partyName(code) {
  const party = state.parties.find((p) => p.code === code);
  return party ? party.name : code;
}

// -- sections -------------------------------------------------------------------------------
function renderSummary(rows, report) {
  const sum = (field) => rows.reduce((total, row) => total + row[field], 0);
  const base = { week: state.week, kind: "violation", area: state.area, party: state.party };
  const cards = [
    ["#sum-violations", sum("violations"), { ...base, exempt: false }, "violations"],
    ["#sum-verified", sum("violations_verified"), { ...base, exempt: false, verification: "verified" }, "verified violations"],
    ["#sum-exempt", sum("violations_exempt"), { ...base, exempt: true }, "exempt violations"],
  ];
  for (const [selector, value, filters, title] of cards) {
    const old = $(selector);
    const button = drillButton(value, filters, `${title}, ${state.week}`);
    button.id = old.id;
    button.className = "num";
    old.replaceWith(button);
  }
  for (const field of ["killed", "injured", "incidents"]) {
    const node = $(`#sum-${field}`);
    node.textContent = fmt(sum(field));
    node.dataset.value = String(sum(field));
  }
  renderEvents(sum("incidents"), sum("incidents_corroborated"));
  const approval = $("#sum-approval");
  const access = report.access;
  approval.textContent = `${pct(access.cumulative_approval_rate)} (${fmt(access.cumulative.approved)}/${fmt(access.cumulative.submitted)})`;
  approval.dataset.value = String(access.cumulative_approval_rate);
}

// events (CONTRACT 9): the corroborated events and their share of all non-exempt events
function renderEvents(events, corroborated) {
  const node = $("#sum-corroborated");
  node.textContent = `${fmt(corroborated)} (${pct(events ? corroborated / events : null)})`;
  node.dataset.value = String(corroborated);
}

const EVENT_FIELDS = ["incidents", "incidents_exempt", "incidents_corroborated", "incident_killed", "incident_injured"];

function renderWeekly(rows) {
  const body = $("#weekly tbody");
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: "12" }, "No violation reported for this week and filter.")));
    return;
  }
  for (const row of rows) {
    const cell = { week: state.week, kind: "violation", area: row.area, party: row.party };
    const where = `${areaName(row.area)}, ${partyName(row.party)}, ${state.week}`;
    const numbers = [
      ["violations", { ...cell, exempt: false }],
      ["violations_verified", { ...cell, exempt: false, verification: "verified" }],
      ["violations_exempt", { ...cell, exempt: true }],
      ["killed", null],
      ["injured", null],
      ...EVENT_FIELDS.map((field) => [field, null]),
    ];
    const tr = el("tr", { dataset: { area: row.area, party: row.party } },
      el("td", { title: row.area }, areaName(row.area)), el("td", { title: row.party }, partyName(row.party)));
    for (const [field, filters] of numbers) {
      const td = el("td", { className: "n", dataset: { field } });
      td.append(filters ? drillButton(row[field], filters, `${field.replace("_", " ")}: ${where}`) : fmt(row[field]));
      tr.append(td);
    }
    body.append(tr);
  }
}

function renderBesieged(report) {
  const body = $("#besieged tbody");
  body.replaceChildren();
  const shown = report.besieged.filter((b) => !state.area || b.area === state.area);
  for (const b of shown) {
    const cell = { week: state.week, kind: "delivery", area: b.area };
    const coverage = b.coverage === null ? 0 : Math.min(1, b.coverage);
    const bar = el("span", { className: "bar-track" }, el("span", { className: "bar" }));
    bar.firstChild.style.width = `${Math.round(coverage * 120)}px`;
    const days = b.days_since_last_completed_delivery;
    body.append(el("tr", { dataset: { area: b.area } },
      el("td", {}, b.name),
      el("td", { className: "n", dataset: { field: "deliveries_completed" } },
        drillButton(b.deliveries_completed, { ...cell, status: "completed" }, `completed deliveries: ${b.name}, ${state.week}`)),
      el("td", { className: "n", dataset: { field: "deliveries_blocked" } },
        drillButton(b.deliveries_blocked, { ...cell, status: "blocked" }, `blocked deliveries: ${b.name}, ${state.week}`)),
      el("td", { className: "n", dataset: { field: "beneficiaries" } }, fmt(b.beneficiaries)),
      el("td", { className: "n", dataset: { field: "people_in_need" } }, fmt(b.people_in_need)),
      el("td", { dataset: { field: "coverage", value: String(b.coverage) } }, bar, pct(b.coverage)),
      el("td", { className: "n", dataset: { field: "days_since_last_completed_delivery" } }, days === null ? "never" : fmt(days))));
  }
}

// A figure that differs from the week's latest edition (CONTRACT 7) is marked where the
// dashboard shows it; the cells are found by their area, party and figure name.
function markRestatements(report) {
  const restated = new Map();
  for (const x of report.restatements || []) restated.set(`${x.figure}|${x.area}|${x.party || ""}`, x);
  let marked = 0;
  for (const td of document.querySelectorAll("#weekly tbody td[data-field], #besieged tbody td[data-field]")) {
    const row = td.closest("tr");
    const x = restated.get(`${td.dataset.field}|${row.dataset.area}|${row.dataset.party || ""}`);
    td.classList.toggle("restated", Boolean(x));
    if (!x) {
      delete td.dataset.restated;
      td.removeAttribute("title");
      continue;
    }
    marked += 1;
    td.dataset.restated = String(x.was);
    const why = x.because.map((c) => `${c.report_id} (${c.reason})`).join(", ");
    td.title = `edition ${report.restated_against}: ${fmt(x.was)}, now ${fmt(x.now)}; because ${why}`;
  }
  const note = $("#restated-note");
  const total = (report.restatements || []).length;
  note.hidden = !report.restated_against;
  note.textContent = report.restated_against
    ? `${total} figure(s) of this week differ from edition ${report.restated_against} (${marked} shown here, marked ▲; hover for the reports and why). The weekly report lists them all.`
    : "";
}

function renderAlerts(report) {
  const list = $("#alerts");
  list.replaceChildren();
  const alerts = report.alerts.filter((a) => !state.area || a.area === state.area);
  if (!alerts.length) list.append(el("li", { className: "resolved" }, "No alert was active this week."));
  for (const a of alerts) {
    list.append(el("li", { className: a.state, dataset: { fingerprint: a.fingerprint } },
      el("strong", {}, `${a.severity} · ${a.rule}`), " ", a.summary,
      el("div", { className: "meta" }, `${areaName(a.area)} · ${a.state} · since ${a.starts_at.slice(0, 16).replace("T", " ")} UTC · ${a.reports} reports`)));
  }
}

// Coverage layer: an area nobody reported from this week is hatched ("no reports"), not
// grey like an area whose reporters saw no violation.
function hatchPattern() {
  const defs = svg("defs");
  const pattern = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.append(svg("rect", { width: 6, height: 6, class: "hatch-ground" }));
  pattern.append(svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(pattern);
  return defs;
}

function coverageOf(report) {
  const byArea = {};
  for (const c of report.coverage || []) byArea[c.area] = c;
  return byArea;
}

function coverageNote(c) {
  if (!c || c.monitored) return c ? `, ${c.reports} reports from ${c.reporting_orgs} organisations` : "";
  const last = c.last_report_at ? `last report ${c.last_report_at.slice(0, 10)}` : "never reported";
  return `, no reports this week (${last})`;
}

// -- the map --------------------------------------------------------------------------------
// Syria and its neighbours from Natural Earth (vendored world-atlas TopoJSON, decoded by
// topojson-client), drawn as SVG in an equirectangular projection true at mid-latitude. The
// geography is one group under a translate/scale (zoom and pan); the marks and labels are
// redrawn at screen size on each change, so labels keep their size and are placed anew.
const MAP = { width: 640, height: 540, west: 33.9, east: 42.5, south: 31.7, north: 37.6 };
const MAP_KX = Math.cos(((MAP.south + MAP.north) / 2) * Math.PI / 180);
const MAP_SCALE = Math.min(MAP.width / ((MAP.east - MAP.west) * MAP_KX), MAP.height / (MAP.north - MAP.south));
const GEO_URL = "/dashboard/static/vendor/world-atlas/countries-50m.json";
const MAX_ZOOM = 24;
// [name, lat, lon] of the neighbours' names, placed first; area labels keep clear of them
const COUNTRY_LABELS = [["Turkey", 37.45, 38.4], ["Iraq", 33.75, 42.0], ["Jordan", 32.2, 37.6],
  ["Lebanon", 33.55, 35.05], ["Israel", 32.05, 34.85], ["Syria", 34.9, 39.3], ["Mediterranean", 35.3, 34.0]];

const project = (lon, lat) => [(lon - MAP.west) * MAP_KX * MAP_SCALE, (MAP.north - lat) * MAP_SCALE];
const inView = ([[west, south], [east, north]]) =>
  east >= MAP.west - 2 && west <= MAP.east + 2 && north >= MAP.south - 2 && south <= MAP.north + 2;

function extentOf(lines) {
  let [west, south, east, north] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const line of lines) {
    for (const [lon, lat] of line) {
      west = Math.min(west, lon); east = Math.max(east, lon);
      south = Math.min(south, lat); north = Math.max(north, lat);
    }
  }
  return [[west, south], [east, north]];
}

// the rings or lines of a GeoJSON geometry
function linesOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon" || geometry.type === "MultiLineString") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  if (geometry.type === "LineString") return [geometry.coordinates];
  return [];
}

function pathData(lines, closed) {
  return lines.map((line) => line.map(([lon, lat], i) => {
    const [px, py] = project(lon, lat);
    return `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
  }).join("") + (closed ? "Z" : "")).join("");
}

async function loadGeography() {
  if (state.geo) return state.geo;
  const response = await fetch(GEO_URL, { cache: "force-cache" });
  if (!response.ok) throw new Error(`the map's geography (${response.status})`);
  const topology = await response.json();
  const countries = window.topojson.feature(topology, topology.objects.countries).features
    .filter((f) => inView(extentOf(linesOf(f.geometry))));
  const nearby = (mesh) => linesOf(mesh).filter((line) => inView(extentOf([line])));
  state.geo = {
    countries: countries.map((f) => ({ name: f.properties.name, d: pathData(linesOf(f.geometry), true) })),
    borders: pathData(nearby(window.topojson.mesh(topology, topology.objects.countries, (a, b) => a !== b)), false),
    coast: pathData(nearby(window.topojson.mesh(topology, topology.objects.countries, (a, b) => a === b)), false),
  };
  return state.geo;
}

function renderMap(rows, report) {
  const map = $("#map");
  map.setAttribute("viewBox", `0 0 ${MAP.width} ${MAP.height}`);
  map.replaceChildren(hatchPattern(), svg("rect", { class: "sea", width: MAP.width, height: MAP.height }));
  const geo = svg("g", { id: "map-geo" });
  for (const country of state.geo.countries) {
    const land = svg("path", { class: `land${country.name === "Syria" ? " syria" : ""}`, d: country.d, "data-country": country.name });
    geo.append(land);
  }
  geo.append(svg("path", { class: "coast", d: state.geo.coast, "vector-effect": "non-scaling-stroke" }));
  geo.append(svg("path", { class: "border", d: state.geo.borders, "vector-effect": "non-scaling-stroke" }));
  map.append(geo, svg("g", { id: "map-marks" }));
  state.mapData = { rows, report };
  applyView();
}

// where a point of the projection is on screen at the current zoom and pan
function onScreen(lon, lat) {
  const [px, py] = project(lon, lat);
  return [state.view.tx + state.view.k * px, state.view.ty + state.view.k * py];
}

function applyView() {
  const { k, tx, ty } = state.view;
  $("#map-geo").setAttribute("transform", `translate(${tx.toFixed(2)},${ty.toFixed(2)}) scale(${k})`);
  $("#map").dataset.zoom = String(k);
  drawMarks(state.mapData.rows, state.mapData.report);
}

function drawMarks(rows, report) {
  const layer = $("#map-marks");
  layer.replaceChildren();
  const covered = coverageOf(report);
  const perArea = {};
  for (const row of rows) perArea[row.area] = (perArea[row.area] || 0) + row.violations;
  const ordered = [...state.areas].sort((a, b) => (perArea[b.code] || 0) - (perArea[a.code] || 0) || a.name.localeCompare(b.name));
  const countryLabels = svg("g", { class: "countries" });
  layer.append(countryLabels);
  const obstacles = [];
  for (const [name, lat, lon] of COUNTRY_LABELS) {
    const [cx, cy] = onScreen(lon, lat);
    const text = svg("text", { class: `label country-label${name === "Mediterranean" ? " sea-label" : ""}`, x: cx, y: cy });
    text.textContent = name;
    countryLabels.append(text);
    const box = text.getBBox();
    if (!insideMap(box)) text.remove();
    else obstacles.push(box);
  }
  const items = [];
  for (const area of ordered) {
    const count = perArea[area.code] || 0;
    const r = 4 + 3 * Math.sqrt(count);
    const c = covered[area.code];
    const silent = c !== undefined && !c.monitored;
    const [cx, cy] = onScreen(area.lon, area.lat);
    const group = svg("g", { "data-area": area.code, "data-violations": String(count), "data-monitored": String(!silent) });
    if (area.besieged) group.append(svg("circle", { class: "ring", cx, cy, r: r + 3 }));
    const look = silent ? " unmonitored" : count ? "" : " quiet";
    const dot = svg("circle", { class: `area${look}${state.area === area.code ? " selected" : ""}`, cx, cy, r: silent ? r + 2 : r });
    const title = svg("title");
    title.textContent = `${area.name} (${area.code}, ${area.governorate}): ${silent ? "no reports" : `${count} violations`} in ${state.week}${area.besieged ? ", besieged" : ""}${coverageNote(c)}`;
    dot.append(title);
    const pick = () => setFilter("area", state.area === area.code ? "" : area.code);
    dot.addEventListener("click", pick);
    group.append(dot);
    const label = svg("text", { class: "label area-label", "data-area": area.code });
    label.textContent = area.name.replace(/ \(.*\)$/, "");
    const hover = svg("title");
    hover.textContent = `${area.name} · ${area.code}`;
    label.append(hover);
    label.addEventListener("click", pick);
    group.append(label);
    layer.append(group);
    const radius = (silent ? r + 2 : r) + (area.besieged ? 3 : 0);
    items.push({ cx, cy, r: radius, label, group });
    if (insideMap({ x: cx - radius, y: cy - radius, width: 2 * radius, height: 2 * radius })) {
      obstacles.push({ x: cx - radius, y: cy - radius, width: 2 * radius, height: 2 * radius });
    }
  }
  placeLabels(items, obstacles);
}

const insideMap = (b) => b.x >= 0 && b.y >= 0 && b.x + b.width <= MAP.width && b.y + b.height <= MAP.height;
const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

// Does the segment from (x1, y1) to (x2, y2) cross a box? (sampled: leaders are short)
function crosses(x1, y1, x2, y2, box) {
  for (let i = 1; i < 20; i += 1) {
    const t = i / 20;
    const x = x1 + (x2 - x1) * t;
    const y = y1 + (y2 - y1) * t;
    if (x > box.x && x < box.x + box.width && y > box.y && y < box.y + box.height) return true;
  }
  return false;
}

// Greedy, collision-aware label placement: each label takes the first free position of its
// candidates, first the eight positions around its dot for all labels, then, for those left
// (the dense Damascus and Eastern Ghouta cluster), positions further out on a leader line
// that crosses no label already placed. Boxes are the labels' own getBBox, padded by 1 px.
function placeLabels(items, obstacles) {
  const placed = [...obstacles];
  const taken = [];
  const measure = (item) => {
    item.label.setAttribute("x", 0);
    item.label.setAttribute("y", 0);
    const box = item.label.getBBox();
    return { bx: box.x, by: box.y, w: box.width + 2, h: box.height + 2 };
  };
  const free = (box) => insideMap(box) && !placed.some((other) => overlaps(other, box));
  const put = (item, size, box) => {
    item.label.setAttribute("x", (box.x + 1 - size.bx).toFixed(1));
    item.label.setAttribute("y", (box.y + 1 - size.by).toFixed(1));
    placed.push(box);
    taken.push(box);
  };
  const left = [];
  for (const item of items) {
    if (!insideMap({ x: item.cx, y: item.cy, width: 0, height: 0 })) {
      item.label.dataset.outside = "true"; // off the zoomed map
      continue;
    }
    const size = measure(item);
    const { cx, cy, r } = item;
    const g = r + 2;
    const d = g * 0.75;
    const around = [[cx + g, cy - size.h / 2], [cx - g - size.w, cy - size.h / 2], [cx - size.w / 2, cy - g - size.h],
      [cx - size.w / 2, cy + g], [cx + d, cy - d - size.h], [cx - d - size.w, cy - d - size.h], [cx + d, cy + d],
      [cx - d - size.w, cy + d]].map(([x, y]) => ({ x, y, width: size.w, height: size.h }));
    const spot = around.find(free);
    if (spot) put(item, size, spot);
    else left.push([item, size]);
  }
  // The rest go out on leader lines: first each on its own side of the crowd's centre, top
  // to bottom, so that leaders keep the dots' order and seldom cross; if that leaves a label
  // out, the order of the dots' weight and either side, whichever places more.
  const middle = left.reduce((sum, [item]) => sum + item.cx, 0) / (left.length || 1);
  const tidy = [...left].sort((a, b) => a[0].cy - b[0].cy);
  const plans = [leaderPlan(tidy, placed, taken, (item) => (item.cx < middle ? [-1, 1] : [1, -1]))];
  if (plans[0].some((p) => !p.found)) plans.push(leaderPlan(left, placed, taken, () => [1, -1]));
  const plan = plans.reduce((best, p) => (p.filter((x) => x.found).length > best.filter((x) => x.found).length ? p : best));
  for (const { item, size, found } of plan) {
    if (!found) { // only when zoomed in far: the name stays on the dot's hover
      item.label.dataset.crowded = "true";
      continue;
    }
    item.group.insertBefore(svg("line", { class: "leader", x1: item.cx, y1: item.cy, x2: found.ex, y2: found.ey }), item.group.firstChild);
    item.label.dataset.leader = "true";
    put(item, size, found.box);
  }
}

// Where each label goes on a leader line (nothing drawn yet): the nearest free box, sweeping
// out from the dot, whose leader crosses no label placed before it.
function leaderPlan(left, placedBefore, takenBefore, sidesOf) {
  const placed = [...placedBefore];
  const taken = [...takenBefore];
  const free = (box) => insideMap(box) && !placed.some((other) => overlaps(other, box));
  return left.map(([item, size]) => {
    const { cx, cy, r } = item;
    const sides = sidesOf(item);
    let found = null;
    for (let reach = r + 18; reach <= 300 && !found; reach += 12) {
      for (let step = 0; step < 24 && !found; step += 1) {
        const angle = (step % 2 ? -1 : 1) * Math.ceil(step / 2) * (Math.PI / 12);
        for (const side of sides) {
          const ex = cx + side * reach * Math.cos(angle);
          const ey = cy + reach * Math.sin(angle);
          const box = { x: side > 0 ? ex + 1 : ex - 1 - size.w, y: ey - size.h / 2, width: size.w, height: size.h };
          if (free(box) && !taken.some((other) => crosses(cx, cy, ex, ey, other))) {
            found = { box, ex, ey };
            placed.push(box);
            taken.push(box);
            break;
          }
        }
      }
    }
    return { item, size, found };
  });
}

// zoom about a point of the map (in its viewBox units), between the whole map and MAX_ZOOM
function zoomAt(factor, x, y) {
  const { k, tx, ty } = state.view;
  const next = Math.round(Math.min(MAX_ZOOM, Math.max(1, k * factor)) * 1000) / 1000;
  state.view = next === 1 ? { k: 1, tx: 0, ty: 0 } : { k: next, tx: x - ((x - tx) * next) / k, ty: y - ((y - ty) * next) / k };
  applyView();
}

function mapPoint(event) {
  const map = $("#map");
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(map.getScreenCTM().inverse());
  return [point.x, point.y];
}

function wireMapControls() {
  const map = $("#map");
  $("#zoom-in").addEventListener("click", () => zoomAt(1.6, MAP.width / 2, MAP.height / 2));
  $("#zoom-out").addEventListener("click", () => zoomAt(1 / 1.6, MAP.width / 2, MAP.height / 2));
  $("#zoom-reset").addEventListener("click", () => { state.view = { k: 1, tx: 0, ty: 0 }; applyView(); });
  map.addEventListener("wheel", (event) => {
    event.preventDefault();
    zoomAt(event.deltaY < 0 ? 1.25 : 1 / 1.25, ...mapPoint(event));
  }, { passive: false });
  let drag = null;
  map.addEventListener("pointerdown", (event) => {
    if (event.target.closest("g[data-area]")) return; // a click on an area filters
    drag = { at: mapPoint(event), tx: state.view.tx, ty: state.view.ty };
    map.setPointerCapture(event.pointerId);
  });
  map.addEventListener("pointermove", (event) => {
    if (!drag || state.view.k === 1) return;
    const [x, y] = mapPoint(event);
    state.view = { ...state.view, tx: drag.tx + x - drag.at[0], ty: drag.ty + y - drag.at[1] };
    applyView();
  });
  map.addEventListener("pointerup", () => { drag = null; });
}

// -- incident candidates (task force) -------------------------------------------------------
// Reports of different partners that look like one event (GET /v1/incidents/candidates);
// "link" posts the candidate's incident report to the ingest API, another origin, and shows
// its answer, a refusal included.
const mayLink = () => state.session && ["taskforce", "admin"].includes(state.session.role);

async function renderCandidates() {
  const panel = $("#candidates-panel");
  panel.hidden = !mayLink();
  if (panel.hidden) return;
  const found = await api("/v1/incidents/candidates", { week: state.week });
  const shown = found.candidates.filter((c) => !state.area || c.area === state.area);
  const body = $("#candidates tbody");
  body.replaceChildren();
  $("#candidates-note").textContent = shown.length
    ? `${shown.length} groups of reports from different partners within ${found.window_minutes} minutes in one area.`
    : "No candidates this week.";
  for (const c of shown) {
    const p = c.proposal;
    const status = el("span", { className: "link-status" });
    const button = el("button", { type: "button", className: "link" }, "link");
    button.addEventListener("click", () => linkIncident(c, button, status));
    body.append(el("tr", { dataset: { incident: c.incident.report_id, members: c.members.join(" ") } },
      el("td", {}, p.occurred_at.slice(0, 16).replace("T", " ")),
      el("td", {}, areaName(c.area)),
      el("td", {}, c.orgs.join(", ")),
      el("td", {}, c.members.join(", ")),
      el("td", {}, `${partyName(p.perpetrator)} · ${p.category} · ${p.target}`),
      el("td", { className: "n" }, fmt(p.killed)),
      el("td", { className: "n" }, fmt(p.injured)),
      el("td", {}, button, " ", status)));
  }
}

async function linkIncident(candidate, button, status) {
  button.disabled = true;
  status.className = "link-status";
  status.textContent = "sending…";
  try {
    const response = await fetch(`${state.session.ingest_url}/v1/reports`, {
      method: "POST",
      headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(candidate.incident),
      cache: "no-store",
    });
    let detail = response.statusText;
    try {
      const answer = await response.json();
      const first = (answer.errors || [])[0];
      detail = [answer.detail, first && first.msg].filter(Boolean).join(": ") || detail;
    } catch (_) { /* not JSON */ }
    if (response.ok) {
      status.textContent = `linked (${response.status})`;
      status.classList.add("ok");
    } else {
      status.textContent = `refused (${response.status}): ${detail}`;
      status.classList.add("error");
      button.disabled = false;
    }
  } catch (error) {
    status.textContent = `could not reach the ingest API: ${error.message}`;
    status.classList.add("error");
    button.disabled = false;
  }
}

function trendChart(canvasId, weeks, series) {
  const datasets = Object.entries(series)
    .sort((a, b) => b[1].reduce((s, n) => s + n, 0) - a[1].reduce((s, n) => s + n, 0))
    .slice(0, PALETTE.length)
    .map(([label, data], i) => ({ label, data, borderColor: PALETTE[i], backgroundColor: PALETTE[i], tension: 0 }));
  const existing = state.charts[canvasId];
  if (existing) existing.destroy();
  state.charts[canvasId] = new window.Chart($(`#${canvasId}`), {
    type: "line",
    data: { labels: weeks, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { position: "right", labels: { boxWidth: 12 } } },
    },
  });
}

async function renderTrends() {
  const weeks = weeksEndingAt(state.week, TREND_WEEKS);
  const answers = await Promise.all(weeks.map((week) => api("/v1/metrics/weekly", { week, area: state.area, party: state.party })));
  const byParty = {};
  const byArea = {};
  answers.forEach((answer, i) => {
    for (const row of answer.rows) {
      (byParty[partyName(row.party)] ||= Array(weeks.length).fill(0))[i] += row.violations;
      (byArea[areaName(row.area)] ||= Array(weeks.length).fill(0))[i] += row.violations;
    }
  });
  trendChart("trend-party", weeks, byParty);
  trendChart("trend-area", weeks, byArea);
  $("#trends").dataset.weeks = weeks.join(",");
}

// -- drill-down -----------------------------------------------------------------------------
// The reports behind a number, in a side panel opened next to the number clicked: names
// with codes on hover, pages of PAGE_SIZE, a CSV of the whole list, and a report's fields
// and revisions as a timeline.
const PAGE_SIZE = 100;
const CSV_FIELDS = ["report_id", "kind", "revision", "org", "occurred_at", "received_at", "week", "area", "area_name",
  "party", "party_name", "category", "target", "status", "killed", "injured", "beneficiaries", "verification",
  "exempt", "exempt_reason", "retracted"];

const named = (name, code) => el("span", { title: code }, name);
const when = (text) => (text ? text.slice(0, 16).replace("T", " ") : "");

function placeBeside(panel, anchor) {
  panel.hidden = false;
  const rect = anchor.getBoundingClientRect();
  const width = Math.min(620, document.documentElement.clientWidth - 24);
  panel.style.width = `${width}px`;
  const right = rect.right + 12;
  const left = right + width <= document.documentElement.clientWidth ? right : Math.max(12, rect.left - width - 12);
  panel.style.left = `${left + window.scrollX}px`;
  panel.style.top = `${Math.max(0, rect.top + window.scrollY - 8)}px`;
}

async function drill(filters, title, anchor) {
  state.drill = { filters, title, offset: 0 };
  $("#drill-title").textContent = title;
  if (anchor) placeBeside($("#drill-panel"), anchor);
  await drillPage(0);
}

async function drillPage(offset) {
  const { filters } = state.drill;
  $("#report-detail").hidden = true;
  const table = $("#drill");
  const body = table.querySelector("tbody");
  try {
    const page = await api("/v1/reports", { ...filters, limit: PAGE_SIZE, offset });
    state.drill.offset = offset;
    state.drill.total = page.total;
    body.replaceChildren();
    for (const r of page.reports) {
      const link = el("button", { type: "button", className: "report-id", title: `${r.report_id}: its fields and every revision` }, r.report_id);
      link.addEventListener("click", () => showReport(r.report_id));
      body.append(el("tr", { dataset: { report: r.report_id } },
        el("td", {}, link), el("td", {}, when(r.occurred_at)),
        el("td", {}, named(areaName(r.area), r.area)), el("td", {}, named(partyName(r.party), r.party)), el("td", {}, r.status),
        el("td", { className: "n" }, fmt(r.killed)), el("td", {}, r.verification),
        el("td", { title: r.exempt_reason || "" }, r.exempt ? exemptText(r.exempt_reason) : "")));
    }
    const last = offset + page.reports.length;
    $("#drill-note").textContent = page.total
      ? `${fmt(offset + 1)}–${fmt(last)} of ${fmt(page.total)} report${page.total === 1 ? "" : "s"} (by time of occurrence).`
      : "No report.";
    $("#drill-prev").disabled = offset === 0;
    $("#drill-next").disabled = last >= page.total;
    $("#drill-csv").disabled = !page.total;
    table.hidden = false;
    table.dataset.total = String(page.total);
    table.dataset.offset = String(offset);
    showMessage("");
  } catch (error) {
    handle(error);
  }
}

// "designation:des-tadmur-isil" reads as the party it designates, where it names one
function exemptText(reason) {
  const [kind, code] = (reason || "").split(":");
  if (kind === "designation" && code) {
    const party = state.parties.find((p) => code.endsWith(`-${p.code}`));
    return party ? `designated party (${party.name})` : "designated party";
  }
  return reason || "exempt";
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// the whole list, every page of it, as CSV (names beside the codes)
async function exportDrill() {
  const rows = [];
  try {
    for (let offset = 0; offset === 0 || offset < state.drill.total; offset += 500) {
      const page = await api("/v1/reports", { ...state.drill.filters, limit: 500, offset });
      state.drill.total = page.total;
      rows.push(...page.reports);
      if (!page.reports.length) break;
    }
  } catch (error) {
    handle(error);
    return;
  }
  const lines = [CSV_FIELDS.join(",")];
  for (const r of rows) {
    const full = { ...r, area_name: areaName(r.area), party_name: partyName(r.party) };
    lines.push(CSV_FIELDS.map((f) => csvCell(full[f])).join(","));
  }
  const csv = `${lines.join("\r\n")}\r\n`;
  $("#drill").dataset.csvRows = String(rows.length);
  download(`truce-reports-${state.week}.csv`, "text/csv", csv);
}

const NAMED_FIELDS = { area: areaName, party: partyName, perpetrator: partyName };

function fieldRows(report) {
  const body = el("tbody");
  for (const [name, value] of Object.entries(report || {})) {
    let shown = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
    let title = "";
    if (NAMED_FIELDS[name] && typeof value === "string") {
      title = value;
      shown = NAMED_FIELDS[name](value);
    }
    body.append(el("tr", { dataset: { field: name } }, el("th", {}, name), el("td", title ? { title } : {}, shown)));
  }
  return el("table", { className: "fields" }, body);
}

function changedFields(before, after) {
  if (!before) return "first filed";
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...names].filter((n) => JSON.stringify(before[n]) !== JSON.stringify(after[n]));
  return changed.length ? `changed: ${changed.join(", ")}` : "no change";
}

async function showReport(reportId) {
  try {
    const history = await api(`/v1/reports/${encodeURIComponent(reportId)}`);
    const detail = $("#report-detail");
    const c = history.classification;
    const timeline = el("ol", { className: "timeline" });
    history.revisions.forEach((rev, i) => {
      timeline.append(el("li", { dataset: { revision: String(rev.revision) } },
        el("strong", {}, `revision ${rev.revision}`), ` · ${when(rev.received_at)} UTC · ${rev.org} (${rev.key_name}) · `,
        changedFields(i ? history.revisions[i - 1].report : null, rev.report)));
    });
    const close = el("button", { type: "button", className: "close" }, "back to the list");
    close.addEventListener("click", () => { detail.hidden = true; $("#drill").hidden = false; });
    detail.replaceChildren(
      el("h3", {}, el("span", { className: "report-id" }, history.report_id), ` · filed by ${history.owner}`),
      el("p", { className: "classification" }, c
        ? `Counts in ${c.week}: ${c.counts ? "yes" : "no"}; verification ${c.verification}${c.exempt ? `; exempt: ${exemptText(c.exempt_reason)}` : ""}`
        : "Not classified yet (or retracted)."),
      el("h4", {}, "Current fields"), fieldRows(history.current),
      el("h4", {}, `Revisions (${history.revisions.length})`), timeline, close);
    detail.dataset.report = history.report_id;
    detail.hidden = false;
    $("#drill").hidden = true;
  } catch (error) {
    handle(error);
  }
}

// The weekly report's five files and the week's editions: fetched with the key (links could
// not carry it), then saved.
const REPORT_FORMATS = [["json", "JSON"], ["md", "Markdown"], ["html", "HTML"], ["csv", "CSV"], ["hxl", "HXL CSV"]];
const REPORT_EXTENSIONS = { json: "json", md: "md", html: "html", csv: "csv", hxl: "hxl.csv" };

async function saveWeekly(format, edition) {
  const params = new URLSearchParams({ format });
  if (edition) params.set("edition", String(edition));
  try {
    const response = await fetch(`/v1/weekly-report/${state.week}?${params}`, {
      headers: { Authorization: `Bearer ${state.key}` }, cache: "no-store",
    });
    if (!response.ok) throw new ApiError(response.status, response.statusText);
    const name = `truce-weekly-${state.week}${edition ? `-edition-${edition}` : ""}.${REPORT_EXTENSIONS[format]}`;
    download(name, response.headers.get("content-type") || "application/octet-stream", await response.text());
  } catch (error) {
    handle(error);
  }
}

function fileButtons(edition) {
  return REPORT_FORMATS.map(([format, label]) => {
    const button = el("button", { type: "button", className: "file", dataset: { format, edition: String(edition || "") } }, label);
    button.addEventListener("click", () => saveWeekly(format, edition));
    return button;
  });
}

async function renderFiles() {
  const editions = await api("/v1/editions", { week: state.week });
  const list = $("#files");
  list.replaceChildren(el("li", { dataset: { edition: "" } }, el("span", {}, `${state.week}, as now: `), ...fileButtons(null)));
  for (const e of editions) {
    list.append(el("li", { dataset: { edition: String(e.edition) } },
      el("span", {}, `edition ${e.edition}${e.published_at ? ` (${when(e.published_at)} UTC)` : ""}: `), ...fileButtons(e.edition)));
  }
}

function wireDrill() {
  $("#drill-prev").addEventListener("click", () => drillPage(Math.max(0, state.drill.offset - PAGE_SIZE)));
  $("#drill-next").addEventListener("click", () => drillPage(state.drill.offset + PAGE_SIZE));
  $("#drill-csv").addEventListener("click", exportDrill);
  $("#drill-close").addEventListener("click", () => { $("#drill-panel").hidden = true; });
}

// -- loading --------------------------------------------------------------------------------
function handle(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(KEY_STORE);
    showMessage("The API key was refused (401). Reload the page with #key=… or use “Forget key” to enter another.");
  } else if (error instanceof ApiError && error.status === 403) {
    showMessage("This key may not read the dashboard (403): it needs the monitor, taskforce or admin role.");
  } else {
    showMessage(`Could not load the data: ${error.message}`);
  }
  document.body.dataset.state = "error";
}

async function load() {
  document.body.dataset.state = "loading";
  try {
    // every area (the map shows them all), then the area filter on the same rows
    const [weekly, report] = await Promise.all([
      api("/v1/metrics/weekly", { week: state.week, party: state.party }),
      api(`/v1/weekly-report/${state.week}`, { format: "json" }),
    ]);
    const rows = weekly.rows.filter((row) => !state.area || row.area === state.area);
    renderSummary(rows, report);
    renderWeekly(rows);
    renderBesieged(report);
    markRestatements(report);
    renderAlerts(report);
    await loadGeography();
    renderMap(weekly.rows, report);
    await renderCandidates();
    await renderFiles();
    await renderTrends();
    showMessage("");
    document.body.dataset.week = state.week;
    document.body.dataset.state = "ready";
  } catch (error) {
    handle(error);
  }
}

function setFilter(name, value) {
  state[name] = value;
  if (name === "area") $("#area").value = value;
  writeFragment();
  load();
}

async function start() {
  readFragment();
  if (!state.key) askForKey();
  if (!state.key) {
    showMessage("No API key: open this page as /dashboard#key=<your key>.");
    document.body.dataset.state = "error";
    return;
  }
  try {
    [state.areas, state.parties, state.session] = await Promise.all([
      api("/v1/reference/areas"), api("/v1/reference/parties"), api("/dashboard/session"),
    ]);
  } catch (error) {
    handle(error);
    return;
  }
  for (const area of state.areas) $("#area").append(el("option", { value: area.code }, area.name));
  for (const party of state.parties) $("#party").append(el("option", { value: party.code }, `${party.name} (${party.code})`));
  $("#week").value = state.week;
  $("#area").value = state.area;
  $("#party").value = state.party;
  $("#week").addEventListener("change", (event) => { if (event.target.value) setFilter("week", event.target.value); });
  $("#area").addEventListener("change", (event) => setFilter("area", event.target.value));
  $("#party").addEventListener("change", (event) => setFilter("party", event.target.value));
  wireMapControls();
  wireDrill();
  $("#forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    askForKey();
    load();
  });
  await load();
}

document.addEventListener("DOMContentLoaded", start);
