// Search view: full-text, semantic or hybrid search over published content.

import { gql } from "../api.js";
import { field, h, itemLink, label, num, options, replace } from "../dom.js";

const MODES = ["HYBRID", "TEXT", "SEMANTIC"];
const TYPES = ["", "VIDEO", "PRODUCT", "ARTICLE", "POST", "IMAGE", "AUDIO"];

const SEARCH = `query ExplorerSearch($query: String!, $mode: SearchMode!, $count: Int!, $contentType: ContentType) {
  searchContent(query: $query, mode: $mode, count: $count, contentType: $contentType) {
    score content { id title contentType tags }
  }
}`;

export async function render(root, route, app) {
  const text = route.query.get("q") || "";
  const mode = MODES.includes(route.query.get("mode")) ? route.query.get("mode") : "HYBRID";
  const type = TYPES.includes(route.query.get("type")) ? route.query.get("type") : "";
  const input = h("input", { type: "search", name: "q", value: text, required: true, autocomplete: "off" });
  const radios = MODES.map((m) =>
    h("label", {}, h("input", { type: "radio", name: "mode", value: m, checked: m === mode }), ` ${label(m)}`),
  );
  const select = h("select", { name: "type" }, options(TYPES, type, { "": "any type" }));
  const form = h(
    "form",
    { class: "controls", role: "search", "aria-label": "Search content" },
    field("search-text", "Search for", input),
    h("fieldset", {}, h("legend", {}, "Mode"), radios),
    field("search-type", "Type", select),
    h("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const chosen = form.querySelector("input[name=mode]:checked").value;
    const params = new URLSearchParams({ q: input.value.trim(), mode: chosen, type: select.value });
    app.go(`#/search?${params}`);
  });
  const results = h("div", { id: "search-results", "aria-live": "polite" });
  replace(root, h("h2", { tabindex: "-1" }, "Search"), form, results);
  if (!text) return;
  try {
    const variables = { query: text, mode, count: 20, contentType: type || null };
    const { data, errors } = await gql(SEARCH, variables);
    if (errors.length) app.fail(errors);
    showHits(results, data.searchContent, text, mode);
  } catch (error) {
    app.fail(error);
  }
}

function showHits(results, hits, text, mode) {
  if (!hits.length) {
    replace(results, h("p", {}, `Nothing found for “${text}”.`));
    return;
  }
  replace(
    results,
    h("p", { class: "hint" }, `${hits.length} results for “${text}” (${label(mode)}).`),
    h(
      "ol",
      { class: "results" },
      hits.map((hit) =>
        h(
          "li",
          { dataset: { contentId: hit.content.id } },
          itemLink(hit.content.id, hit.content.title),
          ` · ${label(hit.content.contentType)} `,
          h("span", { class: "score" }, `(score ${num(hit.score)})`),
        ),
      ),
    ),
  );
}
