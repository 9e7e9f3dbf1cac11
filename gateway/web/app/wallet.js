// The reference wallet (/app/): a citizen's and a merchant's app on one page, talking to
// the gateway that served it. The key is made and kept in this browser (keys.js); every
// transaction is signed here and sent as raw msgpack to POST /v1/tx; reads carry a read
// token; the account's event stream (with ?auth=) keeps the page live. docs/client.md,
// "The reference wallet".
import {fromHex, hex} from "./codec.js";
import {fileDigest, fromSeed, generate, sign, token} from "./keys.js";
import {LANGUAGES, TEXTS} from "./i18n.js";
import qrcode from "./vendor/qrcode.js";

const SEED_ITEM = "stadsmunt.wallet.seed";
const LANGUAGE_ITEM = "stadsmunt.wallet.language";
const TOKEN_RENEW_MS = 60_000;
const MEMBER_POLL_MS = 2_000;
const RECONNECT_MS = 2_000;
const MAX_AMOUNT = 2 ** 53 - 1;

const state = {
  language: "nl", key: null, chain: null, symbol: "", account: null, tasks: [],
  payments: new Map(), last: 0, source: null, token: null, request: null, merchants: null,
};
const $ = (id) => document.getElementById(id);
const t = (name) => TEXTS[state.language][name];

function element(tag, attrs = {}, ...children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") made.textContent = value;
    else if (name.startsWith("on")) made.addEventListener(name.slice(2), value);
    else made.setAttribute(name, value);
  }
  for (const child of children) made.append(child);
  return made;
}

// ---- words and numbers ----------------------------------------------------------------

function applyTexts() {
  document.documentElement.lang = state.language;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  document.title = t("title");
  $("language").value = state.language;
  $("toggle-sheet").textContent = t($("sheet").hidden ? "showSheet" : "hideSheet");
  renderAccount();
  renderTasks();
  renderPayments();
  renderPay();
  if (state.request) renderRequest();
}

export function money(cents) {
  const format = new Intl.NumberFormat(state.language === "nl" ? "nl-NL" : "en-GB",
                                       {minimumFractionDigits: 2, maximumFractionDigits: 2});
  return `${format.format(cents / 100)} ${state.symbol}`.trim();
}

/** Cents from "2,50", "2.50" or "2"; null for anything else or for zero. */
export function cents(text) {
  const found = /^\s*(\d{1,13})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!found) return null;
  const value = Number(found[1]) * 100 + Number((found[2] || "0").padEnd(2, "0"));
  return value > 0 && value <= MAX_AMOUNT ? value : null;
}

function say(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = !text;
}

// ---- the gateway ----------------------------------------------------------------------

async function readToken() {
  if (!state.token || Date.now() - state.token.at > TOKEN_RENEW_MS) {
    const at = Date.now();
    state.token = {at, text: await token(state.key, state.chain, at)};
  }
  return state.token.text;
}

async function get(path, withToken = false) {
  const headers = {"Accept-Language": state.language};
  if (withToken && state.key) headers.Authorization = `Stadsmunt ${await readToken()}`;
  const answer = await fetch(path, {headers});
  const body = await answer.json().catch(() => ({}));
  return {status: answer.status, body};
}

/** Signs and sends a transaction, waits for its decision and says what happened: the
 * chain's own sentence when it refuses, in the chosen language. The result, or null. */
async function send(kind, args, success) {
  say(t("sending"), "info");
  let result;
  try {
    const {envelope} = await sign(state.key, state.chain, kind, args);
    const answer = await fetch("/v1/tx?wait=true&timeout=10", {
      method: "POST", body: envelope,
      headers: {"Content-Type": "application/msgpack", "Accept-Language": state.language},
    });
    result = await answer.json();
    if (answer.status === 400) { say(result.detail || result.title); return null; }
  } catch (error) {
    say(t("unreachable"));
    return null;
  }
  if (result.status === "committed") say(success || t("done"), "ok");
  else if (result.status === "rejected") say(result.detail);
  else say(result.detail || t("pending"));
  await refresh();
  return result;
}

// ---- the key --------------------------------------------------------------------------

async function createKey() {
  const key = await generate();
  localStorage.setItem(SEED_ITEM, hex(key.seed));
  await useKey(key);
  $("toggle-sheet").focus();
}

async function restoreKey(event) {
  event.preventDefault();
  const seed = $("restore-seed").value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(seed)) { say(t("badSeed")); $("restore-seed").focus(); return; }
  $("restore-seed").value = "";
  say("", "info");
  localStorage.setItem(SEED_ITEM, seed);
  await useKey(await fromSeed(fromHex(seed)));
  $("toggle-sheet").focus();
}

async function useKey(key) {
  state.key = key;
  state.token = null;
  $("no-key").hidden = true;
  $("has-key").hidden = false;
  $("public-key").textContent = hex(key.public);
  $("sheet-public").textContent = hex(key.public);
  $("sheet-seed").textContent = hex(key.seed);
  await refresh();
}

function toggleSheet() {
  const sheet = $("sheet");
  sheet.hidden = !sheet.hidden;
  $("toggle-sheet").setAttribute("aria-expanded", String(!sheet.hidden));
  $("toggle-sheet").textContent = t(sheet.hidden ? "showSheet" : "hideSheet");
}

// ---- the account, live ----------------------------------------------------------------

let memberPoll = null;
let refreshing = null;

async function refresh() {
  if (!state.key) return;
  if (refreshing) return refreshing;
  refreshing = (async () => {
    let status, body;
    try {
      ({status, body} = await get(`/v1/accounts/${hex(state.key.public)}`, true));
    } catch (error) {
      say(t("unreachable"));
      clearTimeout(memberPoll);
      memberPoll = setTimeout(refresh, MEMBER_POLL_MS);
      return;
    }
    if (status !== 200) {
      state.account = null;
      $("not-member").hidden = false;
      clearTimeout(memberPoll);
      memberPoll = setTimeout(refresh, MEMBER_POLL_MS);
    } else {
      state.account = body;
      $("not-member").hidden = true;
      if (!state.source) openStream();
      if (body.role === "citizen") await loadTasks();
    }
    renderAccount();
    renderPay();
    if (state.account && state.account.role === "merchant") renderPayments();
  })();
  try { await refreshing; } finally { refreshing = null; }
}

let pending = null;
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 150);
}

async function openStream() {
  const key = hex(state.key.public);
  const url = `/v1/events/stream?account=${key}&after=${state.last}&auth=${await readToken()}`;
  const source = new EventSource(url);
  state.source = source;
  source.onopen = () => { $("live").hidden = false; };
  source.onmessage = (message) => {
    state.last = Number(message.lastEventId);
    noteEvent(JSON.parse(message.data));
    refreshSoon();
  };
  const reopen = () => {
    source.close();
    $("live").hidden = true;
    if (state.source === source) {
      state.source = null;
      state.token = null;
      setTimeout(() => { if (!state.source) openStream(); }, RECONNECT_MS);
    }
  };
  source.addEventListener("expired", reopen);
  source.onerror = reopen;
}

function noteEvent(event) {
  const me = hex(state.key.public);
  if (event.kind === "coin.spent" && event.to === me) {
    state.payments.set(event.tx_id, {from: event.from, amount: event.amount,
                                     memo: event.memo || "", refunded: 0});
    renderPayments();
  } else if (event.kind === "coin.refunded" && event.from === me) {
    const payment = state.payments.get(event.spend);
    if (payment) { payment.refunded += event.amount; renderPayments(); }
  }
}

function room(period) {
  if (!period || period.cap === null) return t("noCap");
  return t("roomOf")(money(period.remaining), money(period.cap));
}

function renderAccount() {
  const account = state.account;
  $("account").hidden = !account;
  if (!account) {
    $("tasks-section").hidden = true;
    $("merchant").hidden = true;
    return;
  }
  $("balance").textContent = money(account.balance);
  $("role").textContent = t("roles")[account.role] || account.role;
  const citizen = account.role === "citizen";
  for (const node of document.querySelectorAll(".citizen-only")) node.hidden = !citizen;
  if (citizen && account.earnings) {
    $("month-room").textContent = room(account.earnings.month);
    $("year-room").textContent = room(account.earnings.year);
  }
  $("tasks-section").hidden = !citizen;
  $("merchant").hidden = account.role !== "merchant";
}

// ---- tasks ----------------------------------------------------------------------------

async function loadTasks() {
  try {
    const {status, body} = await get("/v1/tasks?status=open&limit=1000", true);
    if (status === 200) state.tasks = body.items;
  } catch (error) {
    say(t("unreachable"));
  }
  renderTasks();
}

function myClaim(task) {
  const me = hex(state.key.public);
  const mine = (task.claims || []).filter((c) => c.citizen === me);
  return mine.length ? mine[mine.length - 1] : null;
}

function renderTasks() {
  const box = $("tasks");
  box.replaceChildren();
  if (!state.key || !state.account) return;
  if (!state.tasks.length) {
    box.append(element("p", {class: "quiet", text: t("noTasks")}));
    return;
  }
  const areas = new Map();
  for (const task of state.tasks) {
    if (!areas.has(task.area)) areas.set(task.area, []);
    areas.get(task.area).push(task);
  }
  const dates = new Intl.DateTimeFormat(state.language === "nl" ? "nl-NL" : "en-GB",
                                        {dateStyle: "medium", timeStyle: "short"});
  for (const area of [...areas.keys()].sort()) {
    const list = element("ul", {class: "tasks"});
    box.append(element("h3", {text: `${t("area")}: ${area}`}), list);
    for (const task of areas.get(area)) {
      const claim = myClaim(task);
      const item = element("li", {class: "task", "data-task": task.task},
        element("h4", {text: task.title}),
        element("p", {text: `${t("reward")}: ${money(task.reward)} · ${t("slots")(task.taken, task.slots)} · ${t("deadline")}: ${dates.format(new Date(task.deadline))}`}));
      if (claim) item.append(element("p", {class: "state", "data-state": claim.state,
                                           text: t("states")[claim.state] || claim.state}));
      if (!claim || ["expired", "withdrawn", "released"].includes(claim.state)) {
        item.append(element("button", {type: "button", class: "claim", text: t("claim"),
                                       onclick: () => send("task.claim", {task: task.task})}));
      } else if (claim.state === "open") {
        const id = `proof-${task.task}`;
        const input = element("input", {type: "file", id, accept: "image/*", capture: "environment"});
        item.append(element("label", {for: id, text: t("proof")}), input,
          element("button", {type: "button", class: "submit-proof", text: t("submitProof"),
                             onclick: async () => {
                               const file = input.files[0];
                               if (!file) { say(t("chooseFile")); input.focus(); return; }
                               send("task.submit", {task: task.task, proof: await fileDigest(file)});
                             }}));
      }
      list.append(item);
    }
  }
}

// ---- paying a payment request ---------------------------------------------------------

/** The payment request in the page's fragment (#pay=KEY&amount=CENTS&memo=TEXT), or null. */
export function paymentRequest(fragment) {
  const q = new URLSearchParams(fragment.replace(/^#/, ""));
  const to = q.get("pay") || "";
  const amount = Number(q.get("amount"));
  const memo = q.get("memo") || "";
  if (!/^[0-9a-f]{64}$/.test(to) || !Number.isSafeInteger(amount) || amount < 1 ||
      [...memo].length > 140) return null;
  return {to, amount, memo};
}

async function renderPay() {
  const request = paymentRequest(location.hash);
  $("pay").hidden = !request || !state.account;
  if (!request) return;
  if (state.merchants === null) {
    state.merchants = [];
    const {status, body} = await get("/v1/merchants?limit=1000");
    if (status === 200) state.merchants = body.items;
  }
  const merchant = state.merchants.find((m) => m.key === request.to);
  $("pay-to").textContent = merchant ? `${merchant.name} (${request.to.slice(0, 12)}…)` : request.to;
  $("pay-amount").textContent = money(request.amount);
  $("pay-memo").textContent = request.memo || "–";
}

async function pay() {
  const request = paymentRequest(location.hash);
  if (!request) return;
  const args = {to: fromHex(request.to), amount: request.amount};
  if (request.memo) args.memo = request.memo;
  const result = await send("coin.spend", args, t("paid"));
  if (result && result.status === "committed") history.replaceState(null, "", "/app/");
  renderPay();
}

// ---- a merchant -----------------------------------------------------------------------

function makeRequest(event) {
  event.preventDefault();
  const amount = cents($("request-amount").value);
  if (amount === null) { say(t("badAmount")); $("request-amount").focus(); return; }
  state.request = {amount, memo: $("request-memo").value.trim()};
  say("", "info");
  renderRequest();
}

export function requestLink(origin, key, amount, memo) {
  const q = new URLSearchParams({pay: key, amount: String(amount)});
  if (memo) q.set("memo", memo);
  return `${origin}/app/#${q.toString()}`;
}

function renderRequest() {
  const {amount, memo} = state.request;
  const link = requestLink(location.origin, hex(state.key.public), amount, memo);
  const code = qrcode(0, "M");
  code.addData(link);
  code.make();
  const size = code.getModuleCount();
  const margin = 4;
  let path = "";
  for (let row = 0; row < size; row += 1) {
    for (let col = 0; col < size; col += 1) {
      if (code.isDark(row, col)) path += `M${col + margin} ${row + margin}h1v1h-1z`;
    }
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const whole = size + 2 * margin;
  svg.setAttribute("viewBox", `0 0 ${whole} ${whole}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${t("qrAlt")}: ${money(amount)}${memo ? `, ${memo}` : ""}`);
  const back = document.createElementNS(ns, "rect");
  back.setAttribute("width", String(whole));
  back.setAttribute("height", String(whole));
  back.setAttribute("fill", "#fff");
  const dark = document.createElementNS(ns, "path");
  dark.setAttribute("d", path);
  dark.setAttribute("fill", "#000");
  svg.append(back, dark);
  $("qr").replaceChildren(svg);
  $("request-link").href = link;
  $("request-link").textContent = link;
  $("request").hidden = false;
}

function renderPayments() {
  const list = $("payments");
  list.replaceChildren();
  if (!state.payments.size) {
    list.append(element("li", {class: "quiet", text: t("noPayments")}));
    return;
  }
  for (const [txId, payment] of [...state.payments].reverse()) {
    const item = element("li", {class: "payment", "data-tx": txId},
      element("span", {text: `${money(payment.amount)}${payment.memo ? ` · ${payment.memo}` : ""} · ${t("from")} ${payment.from.slice(0, 12)}…`}));
    const left = payment.amount - payment.refunded;
    if (left > 0) {
      item.append(element("button", {type: "button", class: "refund", text: t("refund"),
        "aria-label": `${t("refund")} ${money(left)}${payment.memo ? ` (${payment.memo})` : ""}`,
        onclick: () => send("coin.refund", {spend: txId, amount: left}, t("refunded"))}));
    } else {
      item.append(element("span", {class: "state", text: ` · ${t("refunded")}`}));
    }
    list.append(item);
  }
}

async function redeem(event) {
  event.preventDefault();
  const amount = cents($("redeem-amount").value);
  if (amount === null) { say(t("badAmount")); $("redeem-amount").focus(); return; }
  const result = await send("coin.redeem", {amount}, t("redeemed"));
  if (result && result.status === "committed") $("redeem-amount").value = "";
}

// ---- start ----------------------------------------------------------------------------

async function start() {
  const chosen = localStorage.getItem(LANGUAGE_ITEM);
  state.language = LANGUAGES.includes(chosen) ? chosen : "nl";
  $("language").addEventListener("change", () => {
    state.language = $("language").value;
    localStorage.setItem(LANGUAGE_ITEM, state.language);
    applyTexts();
  });
  $("create-key").addEventListener("click", createKey);
  $("restore-form").addEventListener("submit", restoreKey);
  $("toggle-sheet").addEventListener("click", toggleSheet);
  $("print").addEventListener("click", () => window.print());
  $("refresh-tasks").addEventListener("click", loadTasks);
  $("pay-button").addEventListener("click", pay);
  $("request-form").addEventListener("submit", makeRequest);
  $("redeem-form").addEventListener("submit", redeem);
  window.addEventListener("hashchange", renderPay);
  applyTexts();
  try {
    const status = await get("/v1/status");
    state.chain = status.body.chain;
    $("chain").textContent = state.chain;
    const genesis = await get("/v1/genesis");
    state.symbol = genesis.body.coin ? genesis.body.coin.symbol : "";
  } catch (error) {
    say(t("unreachable"));
    return;
  }
  const seed = localStorage.getItem(SEED_ITEM);
  if (seed && /^[0-9a-f]{64}$/.test(seed)) await useKey(await fromSeed(fromHex(seed)));
  else $("no-key").hidden = false;
  applyTexts();
  document.body.dataset.ready = "true";
}

start();
