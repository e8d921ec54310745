// Which optional API features this server has, so the page can use them the moment they exist.
// First a cheap introspection query; where introspection is off (production), one probe per
// feature: the field is selected under @skip(if: true), so validation checks that it exists and
// nothing is executed.

import { gql } from "./api.js";

export const DEFAULT_STRATEGIES = ["HYBRID", "COLLABORATIVE", "CONTENT_BASED", "POPULAR", "TRENDING"];

const INTROSPECTION = `query ExplorerFeatures {
  eventInput: __type(name: "EventInput") { inputFields { name } }
  query: __type(name: "Query") { fields { name args { name } } }
  result: __type(name: "RecommendationResult") { fields { name } }
  strategy: __type(name: "Strategy") { enumValues { name } }
}`;

/** Validation-only probes, one per feature; `userId` is the credential's own user (a user token may act for no other). */
export function probes(userId = "probe") {
  const user = JSON.stringify(userId);
  return {
    attribution: `mutation ExplorerProbeAttribution {
      logEvent(input: {userId: ${user}, contentId: "probe", eventType: "click", recommendationId: "probe"}) @skip(if: true) { duplicate }
    }`,
    paging: `query ExplorerProbePaging {
      recommendations(userId: ${user}, count: 1, after: "probe") @skip(if: true) { requestId }
    }`,
    experiment: `query ExplorerProbeExperiment {
      recommendations(userId: ${user}, count: 1) @skip(if: true) { experiment { name arm } }
    }`,
    similarBy: `query ExplorerProbeSimilarBy {
      similarContent(contentId: "probe", count: 1, by: COLLABORATIVE) @skip(if: true) { contentId }
    }`,
    stats: `query ExplorerProbeStats {
      recommendationStats(since: "2000-01-01T00:00:00Z") @skip(if: true) { ctr }
    }`,
  };
}

/** Features of a schema read by introspection; null when introspection is unavailable. */
export async function fromIntrospection() {
  let data;
  try {
    ({ data } = await gql(INTROSPECTION));
  } catch {
    return null;
  }
  if (!data || !data.query) return null;
  const queryFields = new Map(data.query.fields.map((f) => [f.name, f.args.map((a) => a.name)]));
  const has = (list, name) => (list || []).some((x) => x.name === name);
  return {
    source: "introspection",
    attribution: has(data.eventInput?.inputFields, "recommendationId"),
    paging: (queryFields.get("recommendations") || []).includes("after"),
    experiment: has(data.result?.fields, "experiment"),
    stats: queryFields.has("recommendationStats"),
    similarBy: (queryFields.get("similarContent") || []).includes("by"),
    strategies: data.strategy?.enumValues?.map((v) => v.name) || DEFAULT_STRATEGIES,
  };
}

async function probe(document) {
  try {
    const { errors } = await gql(document);
    return errors.length === 0;
  } catch {
    return false;
  }
}

/** Features found by validation-only probes (works with introspection off). */
export async function fromProbes(userId) {
  const documents = probes(userId || undefined);
  const names = Object.keys(documents);
  const results = await Promise.all(names.map((n) => probe(documents[n])));
  const found = Object.fromEntries(names.map((n, i) => [n, results[i]]));
  return { source: "probes", ...found, strategies: DEFAULT_STRATEGIES };
}

/** The server's optional features: introspection first, probes when it is off. */
export async function detectFeatures(userId) {
  return (await fromIntrospection()) || (await fromProbes(userId));
}

/** A line for the footer saying what was found. */
export function describeFeatures(f) {
  const mark = (on) => (on ? "yes" : "no");
  return `Server features (by ${f.source}): click attribution ${mark(f.attribution)}, paging ${mark(f.paging)}, ` +
    `experiments ${mark(f.experiment)}, recommendation stats ${mark(f.stats)}, ` +
    `collaborative similar items ${mark(f.similarBy)}.`;
}
