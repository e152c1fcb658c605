import { describe, expect, it } from "vitest";
import { makeClient } from "../api/client";
import { streamChat, tokensPerSecond } from "./stream";

const req = { model: "m", system: "", prompt: "hi", temperature: 0, maxTokens: 8 };

// openapi-fetch takes globalThis.fetch when the client is made: stub fetch first.
const client = () => makeClient(() => "gc_test", undefined, "http://gpucloud.test");

function sse(events: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const e of events) c.enqueue(enc.encode(e));
      c.close();
    },
  });
}

describe("streamChat", () => {
  it("accumulates the reply, reads usage and measures time to first token", async () => {
    let sent: unknown = null;
    globalThis.fetch = (async (r: Request) => {
      sent = await r.json();
      return new Response(
        sse([
          'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n',
          'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n',
          'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n',
          'data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}\n\n',
          "data: [DONE]\n\n",
        ]),
        { headers: { "content-type": "text/event-stream" } },
      );
    }) as typeof fetch;
    let t = 0;
    const progress: string[] = [];
    const result = await streamChat(client(), req, new AbortController().signal, (p) => progress.push(p.text), () => (t += 100));
    expect(progress).toEqual(["Hel", "Hello"]);
    expect(result).toMatchObject({ text: "Hello", finishReason: "stop", error: null, stopped: false, ttftMs: 100 });
    expect(result.usage?.completion_tokens).toBe(3);
    expect(sent).toMatchObject({ stream: true, stream_options: { include_usage: true }, max_tokens: 8, messages: [{ role: "user", content: "hi" }] });
  });

  it("shows the server's error message when the request is refused", async () => {
    globalThis.fetch = (async () =>
      new Response(JSON.stringify({ error: { message: "The model 'm' does not exist.", type: "invalid_request_error", param: "model", code: "model_not_found" } }), {
        status: 404,
        headers: { "content-type": "application/json" },
      })) as typeof fetch;
    const result = await streamChat(client(), req, new AbortController().signal, () => undefined);
    expect(result.error).toBe("The model 'm' does not exist.");
  });

  it("reports a stop as stopped, not as an error", async () => {
    const controller = new AbortController();
    // A browser's fetch rejects with AbortError once the signal fires; so does this stand-in.
    globalThis.fetch = (() =>
      new Promise((_, reject) => {
        const fail = () => reject(new DOMException("aborted", "AbortError"));
        if (controller.signal.aborted) fail();
        controller.signal.addEventListener("abort", fail);
      })) as typeof fetch;
    const pending = streamChat(client(), req, controller.signal, () => undefined);
    controller.abort();
    const result = await pending;
    expect(result).toMatchObject({ stopped: true, error: null });
  });
});

describe("tokensPerSecond", () => {
  it("counts the tokens after the first over the time since it", () => {
    expect(tokensPerSecond(11, 1000, 2000)).toBe(10);
    expect(tokensPerSecond(1, 1000, 2000)).toBeNull();
    expect(tokensPerSecond(5, null, 2000)).toBeNull();
  });
});
