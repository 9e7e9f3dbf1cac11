// A line plot over the last minutes, drawn as SVG (no library): each series a path,
// broken where a value is missing, on a y axis from 0 to a round maximum.
const NS = "http://www.w3.org/2000/svg";
const [HEIGHT, LEFT, RIGHT, TOP, BOTTOM] = [190, 52, 12, 10, 26];

function element(name, attributes, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// 1, 2 or 5 times a power of ten, at least `value`
export function roundUp(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= value);
}

// series: [{name, className, points: [[time ms, value or null], ...]}]
export function draw(svg, series, { now, spanMs, least, format }) {
  const WIDTH = Math.max(280, Math.round(svg.clientWidth) || 640);   // text at its real size
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => v != null);
  const top = roundUp(Math.max(least, ...values));
  const x = (t) => LEFT + ((t - (now - spanMs)) / spanMs) * (WIDTH - LEFT - RIGHT);
  const y = (v) => HEIGHT - BOTTOM - (v / top) * (HEIGHT - TOP - BOTTOM);
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  for (const v of [0, top / 2, top]) {
    svg.append(element("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(v), y2: y(v),
                                 class: "grid" }));
    svg.append(element("text", { x: LEFT - 6, y: y(v) + 4, class: "tick",
                                 "text-anchor": "end" }, format(v)));
  }
  const minutes = Math.round(spanMs / 60000);
  for (let m = 0; m <= minutes; m += 1) {
    const t = now - m * 60000;
    svg.append(element("text", { x: x(t), y: HEIGHT - 6, class: "tick",
                                 "text-anchor": m === 0 ? "end" : "middle" },
                       m === 0 ? "now" : `−${m} min`));
  }
  for (const s of series) {
    let path = "";
    let drawing = false;
    for (const [t, v] of s.points) {
      if (v == null || t < now - spanMs) { drawing = false; continue; }
      path += `${drawing ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      drawing = true;
    }
    if (path) svg.append(element("path", { d: path, class: `line ${s.className}` }));
  }
}
