// Small DOM helpers: elements are built from text nodes only (no HTML strings), so data cannot inject markup.

/** Create an element: h("a", {href: "#/x", class: "y"}, "text", child, [more, children]). */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "rect", "text", "g", "line", "title"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A number with a fixed count of decimals, or an em dash. */
export function num(value, digits = 3) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
}

/** A <time> element showing an ISO timestamp in the visitor's locale. */
export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("time", { datetime: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

/** "CONTENT_SIMILARITY" -> "content similarity". */
export function label(enumName) {
  return String(enumName || "").toLowerCase().replaceAll("_", " ");
}

/** A link to the item view of a content id. */
export function itemLink(contentId, text) {
  return h("a", { href: `#/item/${encodeURIComponent(contentId)}` }, text || contentId);
}

/** A labelled form field: h("label") + control, stacked. */
export function field(id, text, control) {
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, text), control);
}

/** Options for a <select>, marking `selected`. */
export function options(values, selected, labels = {}) {
  return values.map((v) => h("option", { value: v, selected: v === selected }, labels[v] || label(v)));
}
