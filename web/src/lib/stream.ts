// One streamed chat completion through the typed client, measured: time to first token, tokens/s.
import { type Client, toApiError } from "../api/client";
import { type ChatRequest, messagesOf } from "./snippet";
import { type StreamEvent, type Usage, readChatStream } from "./sse";

export interface StreamResult {
  text: string;
  usage: Usage | null;
  finishReason: string | null;
  ttftMs: number | null;
  tokensPerS: number | null;
  error: string | null;
  stopped: boolean;
}

export interface Progress {
  text: string;
  ttftMs: number | null;
}

/** Rate of generation after the first token: completion tokens (or chunks) over the time since. */
export function tokensPerSecond(tokens: number, firstAt: number | null, endAt: number): number | null {
  if (firstAt === null || tokens <= 1) return null;
  const s = (endAt - firstAt) / 1000;
  return s > 0 ? (tokens - 1) / s : null;
}

export async function streamChat(
  client: Client,
  req: ChatRequest,
  signal: AbortSignal,
  onProgress: (p: Progress) => void,
  now: () => number = () => performance.now(),
): Promise<StreamResult> {
  const started = now();
  const result: StreamResult = { text: "", usage: null, finishReason: null, ttftMs: null, tokensPerS: null, error: null, stopped: false };
  let firstAt: number | null = null;
  let chunks = 0;
  const onEvent = (event: StreamEvent): void => {
    if (event.kind === "delta") {
      if (firstAt === null) {
        firstAt = now();
        result.ttftMs = firstAt - started;
      }
      chunks += 1;
      result.text += event.text;
      onProgress({ text: result.text, ttftMs: result.ttftMs });
    } else if (event.kind === "usage") result.usage = event.usage;
    else if (event.kind === "finish") result.finishReason = event.reason;
    else if (event.kind === "error") result.error = event.message;
  };
  try {
    const { response, error } = await client.POST("/v1/chat/completions", {
      body: {
        model: req.model,
        messages: messagesOf(req),
        temperature: req.temperature,
        max_tokens: req.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
      },
      parseAs: "stream",
      signal,
    });
    if (!response.ok || !response.body) {
      result.error = toApiError(response.status, error).message;
      return result;
    }
    await readChatStream(response.body, onEvent);
  } catch (err) {
    if (signal.aborted) result.stopped = true;
    else result.error = err instanceof Error ? `The stream broke off: ${err.message}` : "The stream broke off.";
  }
  const tokens = result.usage?.completion_tokens ?? chunks;
  result.tokensPerS = tokensPerSecond(tokens, firstAt, now());
  return result;
}
