// Model view (admin key): the model registry with offline metrics, and online CTR where the server has it.

import { gql } from "../api.js";
import { h, label, num, replace, time } from "../dom.js";

const STATS_DAYS = 7;

const VERSIONS = `query ExplorerModels {
  modelVersions { id kind status trainedAt metrics params }
}`;

const STATS = `query ExplorerStats($since: DateTime!) {
  recommendationStats(since: $since, groupBy: [STRATEGY, EXPERIMENT_ARM]) {
    strategy experiment arm impressions clicks ctr
  }
}`;

export async function render(root, route, app) {
  const versions = h("div", { id: "model-versions" });
  const stats = h("div", { id: "model-stats" });
  replace(
    root,
    h("h2", { tabindex: "-1" }, "Model"),
    h("p", { class: "hint" }, "The model registry needs an admin key."),
    versions,
    app.features.stats ? h("section", { "aria-labelledby": "stats-heading" }, h("h3", { id: "stats-heading" }, `Click-through rate, last ${STATS_DAYS} days`), stats) : null,
  );
  await Promise.all([loadVersions(versions, app), app.features.stats ? loadStats(stats, app) : null]);
}

async function loadVersions(box, app) {
  try {
    const { data, errors } = await gql(VERSIONS);
    if (errors.length) app.fail(errors);
    replace(box, versionsTable(data.modelVersions));
  } catch (error) {
    app.fail(error);
  }
}

function metricNames(versions) {
  const names = new Set();
  for (const v of versions) for (const [k, value] of Object.entries(v.metrics || {})) if (typeof value === "number") names.add(k);
  return [...names].sort().slice(0, 8);
}

function versionsTable(versions) {
  if (!versions.length) return h("p", {}, "No model trained yet: run `recengine train`.");
  const metrics = metricNames(versions);
  const head = ["Version", "Kind", "Status", "Trained", ...metrics, "Details"].map((name, i) =>
    h("th", { scope: "col", class: i > 3 && i <= 3 + metrics.length ? "num" : null }, name),
  );
  const rows = versions.map((v) => {
    const active = v.status.toLowerCase() === "active";
    return h(
      "tr",
      { class: active ? "active-model" : null, "aria-current": active ? "true" : null, dataset: { version: v.id } },
      h("th", { scope: "row" }, String(v.id)),
      h("td", {}, label(v.kind)),
      h("td", {}, h("span", { class: active ? "badge active" : "badge" }, active ? "active ✓" : label(v.status))),
      h("td", {}, time(v.trainedAt)),
      metrics.map((m) => h("td", { class: "num" }, metric(v.metrics?.[m]))),
      h("td", {}, details(v)),
    );
  });
  return h(
    "div",
    { class: "table-scroll" },
    h("table", { id: "versions-table" }, h("caption", { class: "visually-hidden" }, "Model versions; the active one is marked"), h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)),
  );
}

function metric(value) {
  return Number.isInteger(value) ? value.toLocaleString() : num(value, 4);
}

function details(v) {
  const json = JSON.stringify({ params: v.params, metrics: v.metrics }, null, 2);
  return h("details", {}, h("summary", {}, `Version ${v.id} JSON`), h("pre", { class: "json" }, json));
}

async function loadStats(box, app) {
  const since = new Date(Date.now() - STATS_DAYS * 86400 * 1000).toISOString();
  try {
    const { data, errors } = await gql(STATS, { since });
    if (errors.length) app.fail(errors);
    const groups = data.recommendationStats || [];
    replace(box, groups.length ? [chart(groups), statsTable(groups)] : h("p", {}, "No impressions recorded yet."));
  } catch (error) {
    app.fail(error);
  }
}

function groupName(g) {
  const arm = g.experiment ? ` · ${g.experiment}/${g.arm}` : "";
  return `${label(g.strategy || "all")}${arm}`;
}

/** A horizontal bar chart of CTR per group, drawn as SVG (no inline styles: CSP). */
function chart(groups) {
  const rowHeight = 26;
  const labelWidth = 180;
  const width = 560;
  const max = Math.max(...groups.map((g) => g.ctr || 0), 0.0001);
  const bars = groups.map((g, i) => {
    const y = i * rowHeight;
    const w = Math.max(1, ((g.ctr || 0) / max) * (width - labelWidth - 70));
    return h(
      "g",
      {},
      h("text", { x: 0, y: y + 17 }, groupName(g)),
      h("rect", { class: "bar", x: labelWidth, y: y + 4, width: w.toFixed(1), height: rowHeight - 8 }),
      h("text", { x: labelWidth + w + 6, y: y + 17 }, `${num((g.ctr || 0) * 100, 2)}%`),
    );
  });
  return h(
    "svg",
    { class: "chart", id: "ctr-chart", role: "img", "aria-labelledby": "ctr-chart-title", viewBox: `0 0 ${width} ${groups.length * rowHeight}`, width: "100%" },
    h("title", { id: "ctr-chart-title" }, "Click-through rate by strategy and experiment arm"),
    bars,
  );
}

function statsTable(groups) {
  const head = ["Strategy", "Experiment / arm", "Impressions", "Clicks", "CTR"].map((n, i) => h("th", { scope: "col", class: i > 1 ? "num" : null }, n));
  const rows = groups.map((g) =>
    h(
      "tr",
      {},
      h("td", {}, label(g.strategy || "all")),
      h("td", {}, g.experiment ? `${g.experiment} / ${g.arm}` : "—"),
      h("td", { class: "num" }, String(g.impressions)),
      h("td", { class: "num" }, String(g.clicks)),
      h("td", { class: "num" }, `${num((g.ctr || 0) * 100, 2)}%`),
    ),
  );
  return h("table", { id: "stats-table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows));
}
