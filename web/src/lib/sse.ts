// Server-sent events, parsed incrementally as bytes arrive (the text/event-stream format of the
// WHATWG spec, as far as the OpenAI-style stream uses it: `data:` lines, events ended by a blank
// line, comments starting with ':'), and the chat-completion chunks carried in them.

/** Feeds text chunks in any split, gives back the `data` of each complete event. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];

  push(chunk: string): string[] {
    this.buffer += chunk;
    const events: string[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) break;
      // A lone '\r' at the end may be the first half of "\r\n": wait for the next chunk.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line, events);
    }
    return events;
  }

  /** The last event, when the stream ended without its blank line. */
  end(): string[] {
    const events: string[] = [];
    if (this.buffer) this.line(this.buffer, events);
    this.buffer = "";
    this.line("", events);
    return events;
  }

  private line(line: string, events: string[]): void {
    if (line === "") {
      if (this.data.length) events.push(this.data.join("\n"));
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
  }
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What one event of a chat completion stream means to the playground. */
export type StreamEvent =
  | { kind: "delta"; text: string }
  | { kind: "usage"; usage: Usage }
  | { kind: "finish"; reason: string }
  | { kind: "error"; message: string }
  | { kind: "done" };

interface Chunk {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: Usage | null;
  error?: { message?: string };
}

/** The events of one SSE `data` payload (`[DONE]` ends the stream). */
export function chatEvents(data: string): StreamEvent[] {
  if (data.trim() === "[DONE]") return [{ kind: "done" }];
  let chunk: Chunk;
  try {
    chunk = JSON.parse(data) as Chunk;
  } catch {
    return [{ kind: "error", message: "The server sent an event that is not JSON." }];
  }
  if (chunk.error) return [{ kind: "error", message: chunk.error.message ?? "The stream failed." }];
  const out: StreamEvent[] = [];
  for (const choice of chunk.choices ?? []) {
    const text = choice.delta?.content;
    if (text) out.push({ kind: "delta", text });
    if (choice.finish_reason) out.push({ kind: "finish", reason: choice.finish_reason });
  }
  if (chunk.usage) out.push({ kind: "usage", usage: chunk.usage });
  return out;
}

/** Reads a response body to its end, calling `onEvent` for every chat event as it arrives. */
export async function readChatStream(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: StreamEvent) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const emit = (payloads: string[]): void => payloads.forEach((p) => chatEvents(p).forEach(onEvent));
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    emit(parser.push(decoder.decode(value, { stream: true })));
  }
  emit(parser.push(decoder.decode()));
  emit(parser.end());
}
