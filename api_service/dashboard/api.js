// Every call the dashboard makes to /api/v1: the key from sessionStorage as a Bearer header, the
// envelope unwrapped, failures turned into one error type. The key never goes into a URL.

const KEY = "sentinel.apiKey";
export const BASE = "/api/v1";

/** The API key for this tab only (sessionStorage: gone when the tab closes). */
export const keyStore = {
  get: () => sessionStorage.getItem(KEY) ?? "",
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** A failed call: the HTTP status (0: no answer), the envelope's message, code and violations. */
export class ApiError extends Error {
  constructor(status, message, { code = "", violations = [], data = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.violations = violations;
    this.data = data;
  }
}

let unauthorized = () => {};
/** What to do when a call answers 401 (the key was revoked, or the server's keys changed). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** Tell the app a call answered 401 (api() and blob() do; sse.js too). */
export function reportUnauthorized(error) {
  unauthorized(error);
}

export function authHeaders(key = keyStore.get()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The error an answer that is not ok carries, from its envelope when it has one. */
export async function errorOf(response) {
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    // not JSON (a proxy's page, an empty body): the status line says enough
  }
  const message = envelope?.message || `${response.status} ${response.statusText || "error"}`.trim();
  return new ApiError(response.status, message, {
    code: envelope?.error?.code ?? "",
    violations: envelope?.error?.violations ?? [],
    data: envelope?.data ?? null,
  });
}

async function send(path, { method = "GET", body, signal, key } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(key) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server could not be reached. Is Sentinel running?", { code: "UNAVAILABLE" });
  }
}

/**
 * Call the API and return the envelope's `data`.
 * Options: method, body (sent as JSON), signal, key (instead of the stored one, for signing in),
 * dataOn: statuses whose envelope still carries data to return (the health answer's 503).
 */
export async function api(path, options = {}) {
  const response = await send(path, options);
  if (response.ok || (options.dataOn ?? []).includes(response.status)) {
    const envelope = await response.json().catch(() => null);
    if (envelope && "data" in envelope) return envelope.data;
    if (response.ok) throw new ApiError(response.status, "The server's answer was not understood.");
  }
  const error = await errorOf(response);
  if (error.status === 401 && options.key === undefined) reportUnauthorized(error);
  throw error;
}

/** An artifact's bytes as a Blob (the key goes in the header, so no <img src> can fetch them). */
export async function blob(path, { signal } = {}) {
  const response = await send(path, { signal });
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.status === 401) reportUnauthorized(error);
    throw error;
  }
  return response.blob();
}

export const enc = encodeURIComponent;

/** A query string from the non-empty values of `params` ("" when all are empty). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
