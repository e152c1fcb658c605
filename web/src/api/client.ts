// The dashboard's only way to the server: an `openapi-fetch` client typed by schema.d.ts (generated
// from `gpucloud openapi`). The API key rides in the Authorization header, added here and nowhere
// else; it is never logged.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import type { ErrorEnvelope } from "./views";

export type Schemas = components["schemas"];

/** A refused call, with the server's error envelope when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly param: string | null;

  constructor(status: number, message: string, code: string | null = null, param: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

function isEnvelope(body: unknown): body is ErrorEnvelope {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const inner = (body as { error: unknown }).error;
  return typeof inner === "object" && inner !== null && "message" in inner;
}

const GENERIC: Record<number, string> = {
  401: "The server did not accept this API key (missing, wrong, revoked or expired).",
  403: "This API key is not allowed to do that.",
  404: "Not found.",
  429: "Too many requests or a spent budget: try again later.",
  500: "The server had an error while handling this request.",
  502: "The server could not be reached through the proxy.",
  503: "The service is unavailable for the moment: try again shortly.",
};

/** An `ApiError` from a failed response's status and (parsed) body. */
export function toApiError(status: number, body: unknown): ApiError {
  if (isEnvelope(body)) {
    const { message, code, param } = body.error;
    return new ApiError(status, message, code ?? null, param ?? null);
  }
  return new ApiError(status, GENERIC[status] ?? `The server answered with status ${status}.`);
}

/** Words a person understands, for any error a call can raise. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof DOMException && error.name === "AbortError") return "Stopped.";
  if (error instanceof TypeError) return "Could not reach the server. Is it running, and is the network up?";
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

export type Client = ReturnType<typeof createClient<paths>>;

/**
 * A client whose calls carry `getKey()` as the bearer token. `onUnauthorized` runs when the server
 * answers 401 to a call that carried a key (the key was revoked or expired meanwhile).
 */
export function makeClient(getKey: () => string | null, onUnauthorized?: () => void, baseUrl = ""): Client {
  const client = createClient<paths>({ baseUrl: baseUrl || globalThis.location?.origin || "" });
  const auth: Middleware = {
    onRequest({ request }) {
      const key = getKey();
      if (key) request.headers.set("Authorization", `Bearer ${key}`);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      return response;
    },
  };
  client.use(auth);
  return client;
}

/**
 * The data of a call, or throws its `ApiError`: `unwrap(await client.GET(...))`. The data's type is
 * the route's documented response (schema.d.ts); a type argument, where given, must match it.
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}
