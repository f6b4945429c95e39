// The web page of `wq exporter --ui`: reads the exporter's JSON (wq/read/web.py) every few
// seconds and shows it. Items, errors and outputs are untrusted: they reach the page only
// through textContent, never as markup (and the Content-Security-Policy runs no inline script).
"use strict";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

// The run's numbers, in the order shown: [field of `wq status --json`, label, format].
const FIELDS = [
  ["total", "total", String],
  ["pending", "pending", String],
  ["in_flight", "in flight", String],
  ["done", "done", String],
  ["dead", "dead", String],
  ["retried", "retried", String],
  ["elapsed_s", "time", duration],
  ["rate", "rate", (v) => v.toFixed(1) + " items/s"],
  ["item_p50_s", "item time p50 ≤", ms],
  ["item_p99_s", "item time p99 ≤", ms],
  ["eta_s", "eta", duration],
  ["digest", "digest", (v) => v.slice(0, 16)],
];

let selected = null; // the run shown, from the URL's #run=ID
let shownDead = null; // the dead count whose list is shown
let chart = null;

function duration(seconds) {
  const whole = Math.round(seconds);
  const d = Math.floor(whole / 86400), h = Math.floor((whole % 86400) / 3600);
  const m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d${pad(h)}h${pad(m)}m`;
  if (h) return `${h}h${pad(m)}m${pad(s)}s`;
  if (m) return `${m}m${pad(s)}s`;
  return `${s}s`;
}

function ms(seconds) {
  return seconds < 1 ? `${+(seconds * 1000).toPrecision(6)} ms` : `${+seconds.toPrecision(6)} s`;
}

// JSON values as text: a string as it is, anything else as compact JSON.
function text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function el(tag, content, className) {
  const node = document.createElement(tag);
  if (content !== undefined) node.textContent = content;
  if (className) node.className = className;
  return node;
}

class Unavailable extends Error {}

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Unavailable(body.error || `${response.status}`);
  return body;
}

function runPath(run, rest) {
  return `/api/runs/${encodeURIComponent(run)}${rest || ""}`;
}

function count(n) {
  return n == null ? "-" : String(n);
}

function showRuns(runs) {
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const r of runs) {
    const row = el("tr");
    row.dataset.run = r.run;
    if (r.run === selected) row.classList.add("selected");
    const link = el("a", r.run);
    link.href = "#run=" + encodeURIComponent(r.run);
    const name = el("td");
    name.append(link);
    const bar = el("progress");
    bar.max = r.total || 1;
    bar.value = r.total ? r.done + r.dead : 0;
    const progress = el("td");
    progress.append(bar);
    // A lost run (a shard's keys gone) has a state and an error, no counts.
    if (r.error) row.title = r.error;
    row.append(name, el("td", r.state), progress, el("td", count(r.done), "num"),
      el("td", count(r.dead), "num"), el("td", count(r.total), "num"),
      el("td", r.rate == null ? "-" : r.rate.toFixed(1) + "/s", "num"));
    body.append(row);
  }
  $("no-runs").hidden = runs.length > 0;
}

function showStatus(s) {
  $("run-name").textContent = s.run;
  $("run-state").textContent = s.state;
  const finished = s.done + s.dead;
  $("bar").max = s.total || 1;
  $("bar").value = s.total ? finished : 0;
  const pct = s.total ? (100 * finished / s.total).toFixed(1) : "100.0";
  $("progress-text").textContent = `${finished} of ${s.total} finished (${pct}%)` +
    (s.drained ? ", drained: figures frozen at the last item" : "");
  const fields = $("fields");
  fields.replaceChildren();
  for (const [key, label, format] of FIELDS) {
    const value = s[key];
    const row = el("div");
    const dd = el("dd", value === null || value === undefined ? "-" : format(value));
    dd.dataset.field = key;
    dd.dataset.value = JSON.stringify(value === undefined ? null : value);
    row.append(el("dt", label), dd);
    fields.append(row);
  }
}

function showHistogram(h) {
  const body = $("histogram").tBodies[0];
  body.replaceChildren();
  const most = Math.max(1, ...h.counts);
  // The buckets from the first to the last that holds an attempt: the rest says nothing.
  const first = h.counts.findIndex((n) => n > 0);
  const last = h.counts.length - 1 - [...h.counts].reverse().findIndex((n) => n > 0);
  h.counts.forEach((n, i) => {
    if (first < 0 || i < first || i > last) return;
    const bound = h.bounds_s[i];
    const bar = el("div", undefined, "bar");
    bar.style.width = `${(100 * n) / most}%`; // CSSOM: allowed by style-src 'self'
    const cell = el("td");
    cell.append(bar);
    const row = el("tr");
    row.append(el("td", bound === null ? "longer" : ms(bound)), el("td", String(n), "num"), cell);
    body.append(row);
  });
}

function showTimeline(t) {
  const xs = t.counts.map((_, i) => t.start_s + i * t.bucket_s);
  const ys = t.counts.map((n) => n / t.bucket_s);
  $("chart-empty").hidden = t.counts.length > 0;
  const width = Math.max(300, $("chart").clientWidth);
  if (chart === null) {
    chart = new uPlot({
      width, height: 220,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      series: [{}, { label: `items/s`, stroke: "#4c7bd9", fill: "rgba(76,123,217,0.15)" }],
      axes: [{}, { label: "items/s" }],
    }, [xs, ys], $("chart"));
  } else {
    chart.setData([xs, ys]);
  }
}

function recordRow(r, columns) {
  const row = el("tr");
  row.dataset.position = String(r.position);
  for (const c of columns) {
    const value = c === "duration_s" && r[c] !== null ? ms(r[c]) : text(r[c]);
    row.append(el("td", value, ["item", "error", "output"].includes(c) ? "text" : ""));
  }
  return row;
}

function showDead(d) {
  const body = $("dead").tBodies[0];
  body.replaceChildren(...d.items.map((r) => recordRow(r, ["position", "attempts", "error", "item"])));
  $("dead-count").textContent = String(d.count);
  $("dead-more").hidden = d.count <= d.items.length;
  $("dead-more").textContent = `and ${d.count - d.items.length} more: download the report`;
}

async function search(event) {
  event.preventDefault();
  if (selected === null) return;
  const q = $("q").value;
  // Said at once: a long search shows it runs, and the last search's count is never read as
  // this one's.
  $("search-summary").textContent = "searching…";
  try {
    const found = await get(runPath(selected, "/search?q=" + encodeURIComponent(q)));
    const columns = ["position", "state", "attempts", "duration_s", "error", "item", "output"];
    $("search-results").tBodies[0].replaceChildren(...found.matches.map((r) => recordRow(r, columns)));
    $("search-results").hidden = found.matches.length === 0;
    $("search-summary").textContent = `${found.matches.length} match(es)` +
      (found.complete ? "" : `, searched positions 0 to ${found.searched - 1}: narrow the search`);
  } catch (err) {
    $("search-summary").textContent = `search failed: ${err.message}`;
  }
}

function setRedis(ok, message) {
  $("redis").textContent = message;
  $("redis").className = "redis " + (ok ? "up" : "down");
  document.querySelector("main").classList.toggle("stale", !ok);
}

async function refresh() {
  try {
    showRuns(await get("/api/runs"));
    if (selected !== null) {
      const s = await get(runPath(selected));
      showStatus(s);
      $("run").hidden = false;
      showHistogram(await get(runPath(selected, "/histogram")));
      showTimeline(await get(runPath(selected, "/timeline")));
      if (shownDead !== s.dead) {
        showDead(await get(runPath(selected, "/dead")));
        shownDead = s.dead;
      }
    }
    setRedis(true, "Redis: up");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    // An outage is shown as one: the last figures stay, greyed, never an empty list.
    setRedis(false, err instanceof Unavailable ? err.message : `exporter unreachable: ${err}`);
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

function select() {
  const match = /^#run=(.+)$/.exec(location.hash);
  selected = match ? decodeURIComponent(match[1]) : null;
  shownDead = null;
  $("run").hidden = true;
  $("search-results").hidden = true;
  $("search-summary").textContent = "";
  if (chart !== null) { chart.destroy(); chart = null; }
  if (selected !== null) {
    $("dl-jsonl").href = runPath(selected, "/report.jsonl");
    $("dl-csv").href = runPath(selected, "/report.csv");
  }
}

window.addEventListener("hashchange", () => { select(); });
$("search-form").addEventListener("submit", search);
select();
refresh();
