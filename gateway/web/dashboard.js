// The operator dashboard: polls /v1/status and /metrics of every gateway it knows (this
// page's own and those of ?peers=) every second, and the open proposals and cap policies
// every ten; docs/operators.md, "12. Dashboard".
import { bucketDelta, figures, parse, quantile } from "./metrics.js";
import { draw } from "./plot.js";
import { blockRow, clock, el, policyText, proposalItem, validatorCard } from "./view.js";

const TICK_MS = 1000;         // how often every gateway is asked
const TIMEOUT_MS = 2500;      // a gateway that has not answered by then is not answering
const SLOW_EVERY = 10;        // proposals and cap policies: every tenth tick
const SPAN_MS = 5 * 60000;    // the plots show the last five minutes
const WINDOW_MS = 5000;       // rates and latencies over the last five seconds
const BLOCK_ROWS = 30;

const $ = (id) => document.getElementById(id);
const own = location.origin;
const given = (new URLSearchParams(location.search).get("peers") || "").split(",")
  .map((text) => { try { return new URL(text.trim()).origin; } catch { return null; } })
  .filter(Boolean);
const origins = [...new Set([own, ...given])];
// origin -> {ok, status, since (ms it stopped answering), name, samples: [{t, fig}]}
const gateways = new Map(origins.map((o) => [o, { ok: null, status: null, samples: [] }]));
const series = { rate: [], p50: [], p95: [] };
let last = null;              // {origin, height, fig} of the block list's source
let ticks = 0;
const opened = Date.now();

async function get(url, asText = false) {
  const answer = await fetch(url, { cache: "no-store",
                                    signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (answer.status === 404) return null;
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return asText ? answer.text() : answer.json();
}

async function poll(origin, now) {
  const g = gateways.get(origin);
  try {
    const [status, text] = await Promise.all([
      get(`${origin}/v1/status`), get(`${origin}/metrics`, true).catch(() => null)]);
    Object.assign(g, { ok: true, status, since: null, name: status.node });
    if (text) g.samples = [...g.samples, { t: now, fig: figures(parse(text)) }]
      .filter((s) => s.t > now - 3 * WINDOW_MS);
  } catch {
    if (g.ok !== false) g.since = now;
    Object.assign(g, { ok: false, samples: [] });
  }
}

const answering = () => origins.filter((o) => gateways.get(o).ok);
const source = () => answering()[0] ?? null;     // this page's own gateway when it answers

function cardOf(name, statuses) {
  const origin = origins.find((o) => o === name || gateways.get(o).name === name) ?? null;
  const g = origin && gateways.get(origin);
  const s = g?.status;
  const unlinked = statuses.filter((t) => t.node !== name && t.validators
    .some((v) => v.name === name && !v.connected)).map((t) => t.node);
  const warnings = [...(g?.ok ? s.warnings : []),
                    ...unlinked.map((by) => `validator ${by} has no link to it`)];
  const card = { name, origin, warnings, height: s?.height, view: s?.view,
                 primary: s?.primary, state: "ok", stateText: "Answering." };
  if (s) {
    const others = s.validators.filter((v) => v.name !== name);
    card.links = `${others.filter((v) => v.connected).length} of ${others.length} others`;
  }
  if (g && !g.ok) {
    Object.assign(card, { height: s ? `${s.height} (last seen)` : undefined, view: undefined,
                          primary: undefined, links: undefined });
    card.state = "down";
    card.stateText = `Not answering since ${clock(g.since)}` +
      (s ? ` (last seen at height ${s.height}).` : ".");
  } else if (s && s.validators.some((v) => v.name === name && !v.connected)) {
    card.state = "down";
    card.stateText = "Its gateway answers but cannot reach the validator process.";
  } else if (!g) {
    const cut = statuses.length > 0 && unlinked.length === statuses.length;
    card.state = cut ? "down" : "unknown";
    card.stateText = cut ? "No validator watched here has a link to it."
      : "Linked; its gateway is not watched here.";
  } else if (warnings.length) {
    card.state = "warn";
    card.stateText = "Answering, with warnings.";
  }
  return card;
}

function showValidators() {
  const statuses = answering().map((o) => gateways.get(o).status);
  const first = statuses.find((s) => s.node === gateways.get(own).name) ?? statuses[0];
  const names = first ? first.validator_set?.validators ?? first.validators.map((v) => v.name)
    : origins.map((o) => gateways.get(o).name ?? o);
  const cards = names.map((name) => cardOf(name, statuses));
  $("validators").replaceChildren(...cards.map(validatorCard));
  const down = cards.filter((c) => c.state === "down").map((c) => c.name);
  const height = Math.max(...statuses.map((s) => s.height));
  // the live region changes only when the state does, not with every block
  const summary = down.length
    ? `${down.length} of ${cards.length} validators down or cut off: ${down.join(", ")}.`
    : `All ${cards.length} validators answer or are linked.`;
  if ($("summary").textContent !== summary) $("summary").textContent = summary;
  $("summary").className = down.length ? "alarm" : "";
  $("height").textContent = statuses.length ? `Height ${height}.` : "No gateway answers.";
  if (first) $("chain").textContent = `${first.chain}`;
}

function windowed(g, now) {
  const latest = g.samples[g.samples.length - 1];
  const early = g.samples.find((s) => s.t >= now - WINDOW_MS - TICK_MS / 2);
  return latest && early && latest !== early ? [early, latest] : null;
}

function measure(now) {
  const from = source() && windowed(gateways.get(source()), now);
  const rate = from ? (from[1].fig.transactions - from[0].fig.transactions)
    / ((from[1].t - from[0].t) / 1000) : null;
  let summed = null;
  for (const o of answering()) {
    const pair = windowed(gateways.get(o), now);
    const delta = pair && bucketDelta(pair[1].fig.buckets, pair[0].fig.buckets);
    if (!delta) continue;
    summed = summed ? summed.map(([le, c], i) => [le, c + delta[i][1]]) : delta;
  }
  const ms = (q) => { const v = summed && quantile(q, summed); return v == null ? null : v * 1000; };
  const keep = (points, value) => [...points, [now, value]].filter(([t]) => t > now - SPAN_MS);
  series.rate = keep(series.rate, rate != null && rate >= 0 ? rate : null);
  series.p50 = keep(series.p50, ms(0.5));
  series.p95 = keep(series.p95, ms(0.95));
}

function describe(points, unit) {
  const values = points.map(([, v]) => v).filter((v) => v != null);
  const now = points.length ? points[points.length - 1][1] : null;
  return values.length ? `now ${now == null ? "–" : now.toFixed(1)} ${unit}, at most `
    + `${Math.max(...values).toFixed(1)} ${unit} in the last minutes` : "no figures yet";
}

function showPlots(now) {
  // from one minute after the page opens up to SPAN_MS, in whole minutes
  const spanMs = Math.min(SPAN_MS, Math.ceil((now - opened + 1) / 60000) * 60000);
  draw($("rate-plot"), [{ className: "rate", points: series.rate }],
       { now, spanMs, least: 1, format: (v) => `${v}` });
  $("rate-text").textContent = `Committed transactions a second, as the first gateway that `
    + `answers counts them: ${describe(series.rate, "a second")}.`;
  draw($("latency-plot"), [{ className: "p50", points: series.p50 },
                           { className: "p95", points: series.p95 }],
       { now, spanMs, least: 10, format: (v) => `${v} ms` });
  $("latency-text").textContent = "From submission through a watched gateway to "
    + `execution. Median: ${describe(series.p50, "ms")}; 95th percentile: `
    + `${describe(series.p95, "ms")}.`;
}

function showBlocks() {
  const origin = source();
  if (!origin) return;
  const g = gateways.get(origin);
  const s = g.status;
  const fig = g.samples[g.samples.length - 1]?.fig ?? null;
  if (last && last.origin === origin && s.height <= last.height) return;
  const known = last && last.origin === origin;
  const from = known ? last.height + 1 : s.height;
  const txs = known && fig && last.fig ? fig.blockTransactions - last.fig.blockTransactions
    : null;
  last = { origin, height: s.height, fig };
  if (!s.height) return;
  const row = blockRow({ from, to: s.height, time: s.time, head: s.head, view: s.view,
                         transactions: txs != null && txs >= 0 ? txs : null });
  $("blocks").querySelectorAll(".quiet").forEach((placeholder) => placeholder.remove());
  $("blocks").prepend(row);
  while ($("blocks").children.length > BLOCK_ROWS) $("blocks").lastChild.remove();
}

async function showGovernance() {
  const origin = source();
  if (!origin) return;
  try {
    const open = await get(`${origin}/v1/proposals?status=open&limit=100`);
    $("proposals").replaceChildren(...(open.items.length ? open.items.map(proposalItem)
      : [el("li", { class: "quiet" }, "No open proposals.")]));
  } catch {
    $("proposals").replaceChildren(el("li", {}, "The proposals could not be read."));
  }
  const year = Number(new Intl.DateTimeFormat("en", { timeZone: "Europe/Amsterdam",
                                                      year: "numeric" }).format(new Date()));
  try {
    const [now, next] = await Promise.all([get(`${origin}/v1/policies/${year}`),
                                           get(`${origin}/v1/policies/${year + 1}`)]);
    $("policy-now").textContent = policyText(year, now, "This year");
    $("policy-next").textContent = policyText(year + 1, next, "Next year");
    $("policy-next").className = next?.own ? "" : "alarm";
  } catch {
    $("policy-next").textContent = "The cap policies could not be read.";
  }
}

async function tick() {
  const now = Date.now();
  await Promise.all(origins.map((o) => poll(o, now)));
  showValidators();
  measure(now);
  showPlots(now);
  showBlocks();
  if (ticks++ % SLOW_EVERY === 0) await showGovernance();
  $("updated").textContent = `Updated ${clock(Date.now())}; watching ${origins.join(", ")}.`;
  setTimeout(tick, Math.max(0, TICK_MS - (Date.now() - now)));
}

$("peers-input").value = given.join(", ");
$("peers-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const url = new URL(location.href);
  url.searchParams.set("peers", $("peers-input").value.split(/[\s,]+/).filter(Boolean)
    .join(","));
  location.assign(url);
});
tick();
