// Rendering: plain DOM, text only (nothing a gateway sends is ever parsed as HTML).

export function el(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export const clock = (ms) => new Date(ms).toLocaleTimeString("en-GB");
const day = (ms) => new Date(ms).toLocaleString("en-GB", { dateStyle: "medium",
                                                           timeStyle: "short" });
export const euros = (cents) => `€${(cents / 100).toLocaleString("en-GB",
  { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

const BADGES = { ok: "Answering", warn: "Warning", down: "Not answering",
                 unknown: "No gateway known" };

function facts(pairs) {
  return el("dl", {}, ...pairs.flatMap(([term, value, field]) => [
    el("dt", {}, term), el("dd", field ? { "data-field": field } : {}, String(value))]));
}

// card: {name, origin, state, stateText, height, view, primary, links, warnings}
export function validatorCard(card) {
  const id = `validator-${card.name}`;
  return el("li", { class: `card ${card.state}`, "data-validator": card.name,
                    "data-state": card.state, "aria-labelledby": id },
    el("h3", { id }, card.name, " ", el("span", { class: "badge" }, BADGES[card.state])),
    el("p", { class: "state" }, card.stateText),
    facts([["Height", card.height ?? "–", "height"], ["View", card.view ?? "–", "view"],
           ["Primary", card.primary ?? "–", "primary"], ["Links", card.links ?? "–", "links"],
           ["Gateway", card.origin ?? "not given (add it to ?peers=)", "gateway"]]),
    card.warnings.length
      ? el("ul", { class: "warnings", "aria-label": `Warnings of ${card.name}` },
           ...card.warnings.map((w) => el("li", {}, w)))
      : el("p", { class: "quiet" }, "No warnings."));
}

// row: {from, to, time, head, view, transactions}
export function blockRow(row) {
  const heights = row.from === row.to ? `Block ${row.to}` : `Blocks ${row.from}–${row.to}`;
  const txs = row.transactions == null ? "" : `, ${row.transactions} transactions`;
  return el("li", { "data-height": row.to },
    el("strong", {}, heights), ` at ${row.time ? clock(row.time) : "–"}${txs}, view `
      + `${row.view}, head `, el("code", {}, `${row.head.slice(0, 16)}…`));
}

function describeArgs(args) {
  const text = Object.entries(args || {})
    .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

export function proposalItem(p) {
  return el("li", {},
    el("strong", {}, p.action), ` by ${p.organisation}: ${p.approvals} of ${p.threshold} `
      + `approvals, open until ${day(p.expires)}`,
    el("br"), el("span", { class: "quiet" }, describeArgs(p.args)),
    p.reason ? el("span", { class: "quiet" }, ` — “${p.reason}”`) : null);
}

// answer: the body of /v1/policies/{year}, or null when no policy applies
export function policyText(year, answer, label) {
  if (!answer) return `${label} (${year}): no cap policy at all: nothing can be posted, `
    + "claimed or approved.";
  const p = answer.policy;
  const caps = `monthly cap ${euros(p.monthly_cap)}, yearly cap ${euros(p.yearly_cap)}`;
  if (answer.own) return `${label} (${year}): has a cap policy of its own (${caps}).`;
  return `${label} (${year}): no cap policy of its own yet; the ${p.year} policy carries `
    + `over (${caps}).`;
}
