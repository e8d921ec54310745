// The one way this page reaches the server: POST /graphql with the visitor's key or user token.

const STORE = "recengine.explorer.credential";
const ENDPOINT = "/graphql";

/** The credential kept in this tab's session storage ("" when none). */
export function credential() {
  return sessionStorage.getItem(STORE) || "";
}

/** Keep (or, with "", forget) the credential for this tab. */
export function setCredential(value) {
  if (value) sessionStorage.setItem(STORE, value);
  else sessionStorage.removeItem(STORE);
}

/** The `token` parameter of a URL fragment such as "#token=…", or null. */
export function tokenFromFragment(hash) {
  if (!hash || hash.startsWith("#/")) return null;
  return new URLSearchParams(hash.slice(1)).get("token");
}

/** What a credential is: a signed user token (with its user id and expiry) or an opaque API key. */
export function describeCredential(value) {
  const parts = (value || "").split(".");
  if (parts.length === 3) {
    try {
      const payload = JSON.parse(atob(parts[1].replaceAll("-", "+").replaceAll("_", "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "=")));
      const userId = payload.sub ?? payload.userId ?? payload.user_id ?? payload.uid ?? null;
      const expires = typeof payload.exp === "number" ? new Date(payload.exp * 1000) : null;
      return { kind: "token", userId: userId === null ? null : String(userId), expires };
    } catch {
      // not a JWT after all: treat it as a key
    }
  }
  return { kind: value ? "key" : "none", userId: null, expires: null };
}

/** A GraphQL response with errors and no data. */
export class GraphQLRequestError extends Error {
  constructor(errors, status) {
    super(errors.map((e) => e.message).join("; ") || `HTTP ${status}`);
    this.errors = errors;
    this.status = status;
    this.codes = errors.map((e) => e.extensions?.code).filter(Boolean);
  }
}

/** POST one operation; resolves to {data, errors} or throws GraphQLRequestError when nothing came back. */
export async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" };
  const token = credential();
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
    credentials: "omit",
    cache: "no-store",
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new GraphQLRequestError([{ message: `HTTP ${response.status} from ${ENDPOINT}` }], response.status);
  }
  const errors = body.errors || [];
  if (!body.data) throw new GraphQLRequestError(errors.length ? errors : [{ message: `HTTP ${response.status}` }], response.status);
  return { data: body.data, errors };
}

/** A sentence for the visitor about a failed request. */
export function explain(error) {
  if (!(error instanceof GraphQLRequestError)) return `Request failed: ${error.message || error}`;
  const codes = new Set(error.codes);
  if (codes.has("UNAUTHENTICATED") || error.status === 401) {
    return `The server did not accept the credential (${error.message}). Paste an API key or a user token above.`;
  }
  if (codes.has("FORBIDDEN")) return `This credential may not do that: ${error.message}`;
  const code = error.codes.length ? ` [${error.codes.join(", ")}]` : "";
  return `${error.message}${code}`;
}
