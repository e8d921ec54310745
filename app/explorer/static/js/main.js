// The explorer's entry point: credential handling, feature detection and the hash router.

import { credential, describeCredential, explain, GraphQLRequestError, setCredential, tokenFromFragment } from "./api.js";
import { DEFAULT_STRATEGIES, describeFeatures, detectFeatures } from "./features.js";
import { replace } from "./dom.js";
import * as item from "./views/item.js";
import * as model from "./views/model.js";
import * as search from "./views/search.js";
import * as user from "./views/user.js";

const VIEWS = { user, item, search, model };
const $ = (id) => document.getElementById(id);

const app = {
  features: { source: "defaults", attribution: false, paging: false, experiment: false, stats: false, similarBy: false, strategies: DEFAULT_STRATEGIES },

  /** The user id a view starts with: the token's user, else "1". */
  defaultUserId() {
    return describeCredential(credential()).userId || "1";
  },

  /** Show a status message (polite live region). */
  notify(message) {
    $("notice").textContent = message;
  },

  /** Show an error (assertive alert region): an Error or a list of GraphQL errors. */
  fail(error) {
    const text = Array.isArray(error) ? explain(new GraphQLRequestError(error, 200)) : explain(error);
    const box = $("alert");
    box.textContent = text;
    box.hidden = false;
  },

  /** Navigate to a route (re-renders even when the hash is unchanged). */
  go(hash) {
    if (location.hash === hash) route(true);
    else location.hash = hash;
  },
};

function parseRoute(hash) {
  const [path, query] = (hash.startsWith("#/") ? hash.slice(2) : "user").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const name = VIEWS[parts[0]] ? parts[0] : "user";
  return { name, args: parts.slice(1), query: new URLSearchParams(query || "") };
}

async function route(moveFocus) {
  const current = parseRoute(location.hash);
  $("alert").hidden = true;
  if (moveFocus) $("notice").textContent = "";
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === current.name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const root = document.createElement("section");
  root.className = `view view-${current.name}`;
  replace($("view"), root);
  document.title = `${current.name[0].toUpperCase()}${current.name.slice(1)} · recengine explorer`;
  const rendering = VIEWS[current.name].render(root, current, app);
  if (moveFocus) root.querySelector("h2")?.focus();
  await rendering;
  root.dataset.ready = "true";
}

function showCredential() {
  const info = describeCredential(credential());
  const status = $("credential-status");
  if (info.kind === "token") {
    const expiry = info.expires ? `, expires ${info.expires.toLocaleString()}` : "";
    status.textContent = `Using a user token${info.userId ? ` for user ${info.userId}` : ""}${expiry}.`;
  } else if (info.kind === "key") {
    status.textContent = "Using an API key (client keys act for any user; admin keys may do everything).";
  } else {
    status.textContent = "No credential: paste an API key or a user token (kept in this tab only).";
  }
}

async function refreshFeatures() {
  app.features = await detectFeatures(describeCredential(credential()).userId);
  $("features").textContent = describeFeatures(app.features);
  document.body.dataset.features = app.features.source;
}

/** Store a `#token=…` fragment's credential and drop it from the address bar; true when there was one. */
function takeFragmentToken() {
  const token = tokenFromFragment(location.hash);
  if (!token) return false;
  setCredential(token);
  const userId = describeCredential(token).userId;
  // Drop the token from the address bar and history as soon as it is stored.
  history.replaceState(null, "", `${location.pathname}${location.search}#/user${userId ? `/${encodeURIComponent(userId)}` : ""}`);
  return true;
}

async function onHashChange() {
  if (takeFragmentToken()) {  // a token link opened in a tab that was already on this page
    showCredential();
    await refreshFeatures();
  }
  await route(true);
}

function wireCredentialForm() {
  const input = $("credential");
  $("credential-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setCredential(input.value.trim());
    input.value = "";
    showCredential();
    await refreshFeatures();
    await route(false);
  });
  $("forget").addEventListener("click", () => {
    setCredential("");
    showCredential();
    input.focus();
  });
  document.querySelector("[data-skip]").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
}

async function start() {
  takeFragmentToken();
  wireCredentialForm();
  showCredential();
  await refreshFeatures();
  window.addEventListener("hashchange", onHashChange);
  await route(false);
  document.body.dataset.started = "true";
}

start();
