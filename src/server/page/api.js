// The server's public API as the page uses it: JSON requests with the API key
// (kept in localStorage), OpenAI error objects turned into their message, and
// server-sent events read from a streamed response.

const KEY_STORAGE = "tiller.apiKey";

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

// An HTTP failure with the server's own message (never a stack): `status` lets
// callers tell "no such route" (404) and "key needed" (401) apart.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// The message of an error response: OpenAI's {"error": {"message"}} when the
// body is one, else the status line.
async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, message);
}

// fetch() that throws ApiError for a failed status and for an unreachable server.
export async function request(method, path, { body, contentType, signal } = {}) {
  const extra = contentType ? { "Content-Type": contentType } : {};
  let response;
  try {
    response = await fetch(path, { method, headers: headers(extra), body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `cannot reach the server (${error.message})`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJson(path) {
  return (await request("GET", path)).json();
}

// The `data:` payloads of a server-sent-event stream, one string each, as they
// arrive ("[DONE]" included; the caller decides what it means).
export async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield data;
    }
  }
}
