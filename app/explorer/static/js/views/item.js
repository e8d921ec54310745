// Item view: an item's facts and the items most similar to it, each a link.

import { gql } from "../api.js";
import { field, h, itemLink, label, num, replace, time } from "../dom.js";

const SIMILAR = 10;

/** The item document: facts, content-embedding neighbours, and the collaborative ones where offered. */
export function itemQuery(features) {
  const collaborative = features.similarBy
    ? `collaborative: similarContent(contentId: $id, count: $count, by: COLLABORATIVE) { ...Neighbour }`
    : "";
  return `query ExplorerItem($id: ID!, $count: Int!) {
  content(id: $id) {
    id title description contentType status category tags metadata createdAt updatedAt
  }
  embedding: similarContent(contentId: $id, count: $count) { ...Neighbour }
  ${collaborative}
}
fragment Neighbour on RecommendedItem { contentId score rank explanation content { id title contentType } }`;
}

export async function render(root, route, app) {
  const contentId = route.args[0] || "";
  const input = h("input", { name: "contentId", value: contentId, required: true, autocomplete: "off" });
  const form = h("form", { class: "controls", "aria-label": "Choose an item" }, field("content-id", "Content id", input), h("button", { type: "submit" }, "Open"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    app.go(`#/item/${encodeURIComponent(input.value.trim())}`);
  });
  const body = h("div", { id: "item" });
  replace(root, h("h2", { tabindex: "-1" }, "Item"), form, body);
  if (!contentId) {
    replace(body, h("p", {}, "Type a content id, or follow an item link from the other views."));
    return;
  }
  try {
    const { data, errors } = await gql(itemQuery(app.features), { id: contentId, count: SIMILAR });
    if (errors.length) app.fail(errors);
    if (!data.content) {
      replace(body, h("p", {}, `No item with id “${contentId}”.`));
      return;
    }
    replace(body, facts(data.content), neighbours(data, app.features));
  } catch (error) {
    app.fail(error);
  }
}

function facts(c) {
  const row = (name, value) => [h("dt", {}, name), h("dd", {}, value)];
  const tags = c.tags.length ? h("ul", { class: "chips", "aria-label": "Tags" }, c.tags.map((t) => h("li", { class: "chip" }, t))) : "none";
  return h(
    "article",
    { "aria-labelledby": "item-title" },
    h("h3", { id: "item-title" }, c.title),
    h(
      "dl",
      { class: "facts" },
      row("Id", h("code", {}, c.id)),
      row("Type", label(c.contentType)),
      row("Status", label(c.status)),
      row("Category", c.category || "—"),
      row("Tags", tags),
      row("Created", time(c.createdAt)),
      row("Updated", time(c.updatedAt)),
      c.description ? row("Description", c.description) : null,
      row("Metadata", h("pre", { class: "json" }, JSON.stringify(c.metadata, null, 2))),
    ),
  );
}

function neighbours(data, features) {
  const lists = [["similar-embedding", "Similar by content (embedding)", data.embedding]];
  if (features.similarBy) lists.push(["similar-collaborative", "Similar by behaviour (collaborative)", data.collaborative]);
  const sections = lists.map(([id, title, items]) =>
    h("section", { "aria-labelledby": `${id}-heading` }, h("h3", { id: `${id}-heading` }, title), similarList(id, items || [])),
  );
  if (!features.similarBy) {
    sections.push(
      h(
        "section",
        { "aria-labelledby": "similar-collaborative-heading" },
        h("h3", { id: "similar-collaborative-heading" }, "Similar by behaviour (collaborative)"),
        h("p", { class: "hint" }, "This server's similarContent offers content-embedding neighbours only; collaborative neighbours appear here once it takes a “by: COLLABORATIVE” argument."),
      ),
    );
  }
  return h("div", { class: "similar-grid" }, sections);
}

function similarList(id, items) {
  if (!items.length) return h("p", { id }, "None.");
  return h(
    "ol",
    { class: "results", id },
    items.map((s) =>
      h("li", { dataset: { contentId: s.contentId } }, itemLink(s.contentId, s.content?.title), " ", h("span", { class: "score" }, `(${num(s.score)})`)),
    ),
  );
}
