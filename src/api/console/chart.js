// Charts for the console, drawn as inline SVG (no library): a horizontal bar chart of a funnel's
// stages, one bar per stage, its count written beside it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with attributes. */
function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

/**
 * A bar chart of `bars` ([{label, value, color?}]): one row a bar, scaled to the largest value,
 * with the label on the left and the number on the right. Returns the <svg> element.
 */
function barChart(bars, opts) {
  const o = Object.assign({ width: 460, row: 22, label: 90 }, opts || {});
  const max = Math.max(1, ...bars.map((b) => b.value));
  const plot = o.width - o.label - 60;
  const svg = svgEl("svg", { width: o.width, height: bars.length * o.row + 4, role: "img" });
  bars.forEach((b, i) => {
    const y = i * o.row + 2;
    const w = Math.max(b.value > 0 ? 2 : 0, Math.round((b.value / max) * plot));
    const label = svgEl("text", { x: o.label - 6, y: y + o.row / 2 + 4, "text-anchor": "end" });
    label.textContent = b.label;
    const bar = svgEl("rect", { x: o.label, y: y + 3, width: w, height: o.row - 6, rx: 2, fill: b.color || "#1d5fbf" });
    bar.dataset.stage = b.key || "";
    bar.dataset.value = String(b.value);
    const num = svgEl("text", { x: o.label + w + 6, y: y + o.row / 2 + 4 });
    num.textContent = String(b.value);
    svg.append(label, bar, num);
  });
  return svg;
}
