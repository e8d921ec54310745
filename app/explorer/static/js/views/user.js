// User view: recent history next to the recommendations, with their reasons; a click logs an event.

import { gql } from "../api.js";
import { field, h, itemLink, label, num, options, replace, time } from "../dom.js";

export const COUNT = 10;
const HISTORY = 20;
const MAX_TITLE_LOOKUPS = 20;

const HISTORY_QUERY = `query ExplorerHistory($userId: ID!, $first: Int!) {
  events(userId: $userId, first: $first) {
    totalCount
    edges { node { id eventType value timestamp contentId content { id title contentType } } }
  }
}`;

const CLICK = `mutation ExplorerClick($input: EventInput!) {
  logEvent(input: $input) { duplicate event { id eventType timestamp } }
}`;

/** The recommendations document for this server's features (`after` inlined as a string literal). */
export function recommendationsQuery(features, after) {
  const experiment = features.experiment ? "experiment { name arm }" : "";
  const paging = features.paging && after ? `, after: ${JSON.stringify(after)}` : "";
  return `query ExplorerRecommendations($userId: ID!, $count: Int!, $strategy: Strategy!) {
  recommendations(userId: $userId, count: $count, strategy: $strategy${paging}) {
    requestId modelVersion cached responseTimeMs strategy timestamp ${experiment}
    items {
      rank score explanation contentId
      reasons { kind anchorContentId weight }
      content { id title contentType }
    }
  }
}`;
}

function titlesQuery(ids) {
  const defs = ids.map((_, i) => `$id${i}: ID!`).join(", ");
  const fields = ids.map((_, i) => `c${i}: content(id: $id${i}) { id title }`).join("\n  ");
  const variables = Object.fromEntries(ids.map((id, i) => [`id${i}`, id]));
  return [`query ExplorerTitles(${defs}) {\n  ${fields}\n}`, variables];
}

export async function render(root, route, app) {
  const userId = route.args[0] || app.defaultUserId();
  const strategies = app.features.strategies;
  const strategy = strategies.includes(route.query.get("strategy")) ? route.query.get("strategy") : strategies[0];
  const ui = build(root, userId, strategy, app);
  if (!userId) {
    replace(ui.meta, h("li", {}, "Type a user id and press Show."));
    return;
  }
  const view = new UserView(userId, strategy, ui, app);
  await view.refresh();
}

function build(root, userId, strategy, app) {
  const idInput = h("input", { name: "userId", value: userId, required: true, autocomplete: "off", inputmode: "text" });
  const select = h("select", { name: "strategy" }, options(app.features.strategies, strategy));
  const form = h(
    "form",
    { class: "controls", "aria-label": "Choose a user" },
    field("user-id", "User id", idInput),
    field("strategy", "Strategy", select),
    h("button", { type: "submit" }, "Show"),
  );
  // Applied with Show (not on change: arrow keys on a closed <select> would reload at every step).
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    app.go(`#/user/${encodeURIComponent(idInput.value.trim())}?strategy=${select.value}`);
  });
  const ui = {
    meta: h("ul", { class: "meta", id: "rec-meta", "aria-label": "About this result" }),
    cards: h("ol", { class: "cards", id: "cards", "aria-labelledby": "recs-heading" }),
    more: h("button", { type: "button", class: "more secondary", id: "more", hidden: true }, "More"),
    recsHeading: h("h3", { id: "recs-heading", tabindex: "-1" }, "Recommendations"),
    history: h("div", { id: "history" }),
  };
  replace(
    root,
    h("h2", { tabindex: "-1" }, userId ? `User ${userId}` : "User"),
    form,
    ui.meta,
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { "aria-labelledby": "recs-heading" },
        ui.recsHeading,
        h("p", { class: "hint", id: "card-hint" }, "Activate a card to log a click for this user; the list refreshes."),
        ui.cards,
        ui.more,
      ),
      h("section", { "aria-labelledby": "history-heading" }, h("h3", { id: "history-heading" }, "Recent history"), ui.history),
    ),
  );
  return ui;
}

class UserView {
  constructor(userId, strategy, ui, app) {
    Object.assign(this, { userId, strategy, ui, app });
    this.titles = new Map();
    this.lastRequestId = null;
    this.busy = false;
    ui.more.addEventListener("click", () => this.more());
  }

  async refresh() {
    await Promise.all([this.loadHistory(), this.loadRecommendations(null)]);
  }

  async loadHistory() {
    try {
      const { data, errors } = await gql(HISTORY_QUERY, { userId: this.userId, first: HISTORY });
      if (errors.length) this.app.fail(errors);
      this.renderHistory(data.events);
    } catch (error) {
      this.app.fail(error);
      replace(this.ui.history, h("p", { class: "hint" }, "History unavailable."));
    }
  }

  renderHistory(events) {
    const rows = events.edges.map(({ node }) => {
      if (node.content) this.titles.set(node.contentId, node.content.title);
      return h(
        "tr",
        {},
        h("td", {}, time(node.timestamp)),
        h("td", {}, node.eventType, node.value === null ? "" : ` (${node.value})`),
        h("td", {}, itemLink(node.contentId, node.content?.title)),
      );
    });
    if (!rows.length) {
      replace(this.ui.history, h("p", {}, "No events yet: a new user gets popular picks (cold start)."));
      return;
    }
    replace(
      this.ui.history,
      h("p", { class: "hint" }, `Latest ${rows.length} of ${events.totalCount} events.`),
      h(
        "table",
        { id: "history-table" },
        h("caption", { class: "visually-hidden" }, `Recent events of user ${this.userId}`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Item"))),
        h("tbody", {}, rows),
      ),
    );
  }

  async loadRecommendations(after) {
    const query = recommendationsQuery(this.app.features, after);
    try {
      const { data, errors } = await gql(query, { userId: this.userId, count: COUNT, strategy: this.strategy });
      if (errors.length) this.app.fail(errors);
      if (data.recommendations) this.renderResult(data.recommendations, Boolean(after));
    } catch (error) {
      this.app.fail(error);
    }
  }

  renderResult(result, append) {
    this.lastRequestId = result.requestId;
    for (const item of result.items) if (item.content) this.titles.set(item.contentId, item.content.title);
    const cards = result.items.map((item) => this.card(item, result.requestId));
    if (append) this.ui.cards.append(...cards);
    else replace(this.ui.cards, cards);
    replace(this.ui.meta, this.meta(result));
    this.ui.more.hidden = !(this.app.features.paging && result.items.length === COUNT);
    if (append && cards.length) cards[0].querySelector("button").focus();
    if (!result.items.length && !append) replace(this.ui.cards, h("li", {}, "No recommendations."));
    this.fillAnchorTitles();
  }

  meta(result) {
    const item = (name, value) => h("li", {}, `${name} `, h("strong", {}, value));
    const experiment = result.experiment ? `${result.experiment.name} / ${result.experiment.arm}` : "none";
    return [
      item("Model version", result.modelVersion === null ? "none (no trained model)" : String(result.modelVersion)),
      item("Strategy", label(result.strategy)),
      this.app.features.experiment ? item("Experiment", experiment) : null,
      item("Cached", result.cached ? "yes" : "no"),
      item("Server time", `${num(result.responseTimeMs, 1)} ms`),
      h("li", { class: "hide-narrow" }, "Request ", h("code", { id: "request-id" }, result.requestId)),
    ];
  }

  card(item, requestId) {
    const title = item.content?.title || item.contentId;
    const why = `why-${requestId}-${item.rank}`;
    return h(
      "li",
      {
        class: "card",
        dataset: { contentId: item.contentId, rank: item.rank, requestId },
        onclick: (event) => {
          if (!event.target.closest("a")) this.click(item, title, requestId);
        },
      },
      h("div", { class: "card-head" }, h("span", { class: "rank" }, `#${item.rank}`), h("span", { class: "score" }, `score ${num(item.score)}`)),
      h("button", { type: "button", class: "card-title", "aria-describedby": `${why} card-hint` }, title),
      h("p", { class: "explanation", id: why }, item.explanation),
      h("ul", { class: "chips", "aria-label": "Reasons" }, item.reasons.map((r) => this.chip(r))),
      h("p", { class: "card-foot" }, itemLink(item.contentId, "Item details"), item.content ? ` · ${label(item.content.contentType)}` : ""),
    );
  }

  chip(reason) {
    const anchor = reason.anchorContentId;
    return h(
      "li",
      { class: "chip", dataset: { kind: reason.kind } },
      h("span", { class: "kind" }, label(reason.kind)),
      anchor ? [" · ", h("a", { href: `#/item/${encodeURIComponent(anchor)}`, dataset: { anchor } }, this.titles.get(anchor) || anchor)] : "",
      " ",
      h("span", { class: "weight", title: "This reason's contribution to the score" }, num(reason.weight)),
    );
  }

  async fillAnchorTitles() {
    const links = [...this.ui.cards.querySelectorAll("a[data-anchor]")];
    const missing = [...new Set(links.map((a) => a.dataset.anchor).filter((id) => !this.titles.has(id)))];
    if (missing.length) {
      try {
        const [query, variables] = titlesQuery(missing.slice(0, MAX_TITLE_LOOKUPS));
        const { data } = await gql(query, variables);
        for (const c of Object.values(data)) if (c) this.titles.set(c.id, c.title);
      } catch {
        return; // the ids stay as the links' text
      }
    }
    for (const a of links) a.textContent = this.titles.get(a.dataset.anchor) || a.dataset.anchor;
  }

  async click(item, title, requestId) {
    if (this.busy) return;
    this.busy = true;
    const input = {
      userId: this.userId,
      contentId: item.contentId,
      eventType: "click",
      platform: "web",
      metadata: { source: "explorer", rank: item.rank },
    };
    if (this.app.features.attribution) input.recommendationId = requestId;
    try {
      const { data } = await gql(CLICK, { input });
      this.app.notify(`Logged a click on “${title}” (event ${data.logEvent.event.id}); recommendations refreshed.`);
      await this.refresh();
      this.ui.recsHeading.focus();
    } catch (error) {
      this.app.fail(error);
    } finally {
      this.busy = false;
    }
  }

  async more() {
    this.ui.more.disabled = true;
    await this.loadRecommendations(this.lastRequestId);
    this.ui.more.disabled = false;
  }
}
