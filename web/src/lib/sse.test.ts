import { describe, expect, it } from "vitest";
import { SseParser, chatEvents, readChatStream, type StreamEvent } from "./sse";

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;

describe("SseParser", () => {
  it("gives each event's data however the bytes are split", () => {
    const text = `${chunk("Hel")}${chunk("lo")}data: [DONE]\n\n`;
    for (let size = 1; size <= text.length; size += 7) {
      const parser = new SseParser();
      const out: string[] = [];
      for (let i = 0; i < text.length; i += size) out.push(...parser.push(text.slice(i, i + size)));
      out.push(...parser.end());
      expect(out.map((d) => chatEvents(d))).toEqual([[{ kind: "delta", text: "Hel" }], [{ kind: "delta", text: "lo" }], [{ kind: "done" }]]);
    }
  });

  it("handles CRLF, CR split across chunks, comments and multi-line data", () => {
    const parser = new SseParser();
    expect(parser.push(": keep-alive\r\ndata: a\r")).toEqual([]);
    expect(parser.push("\ndata: b\r\n\r\n")).toEqual(["a\nb"]);
    expect(parser.push("event: x\ndata:c\n\n")).toEqual(["c"]);
  });

  it("keeps a last event that lacks its blank line", () => {
    const parser = new SseParser();
    expect(parser.push("data: tail")).toEqual([]);
    expect(parser.end()).toEqual(["tail"]);
  });
});

describe("chatEvents", () => {
  it("reads usage, finish reasons and errors", () => {
    expect(chatEvents(JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }))).toEqual([
      { kind: "usage", usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } },
    ]);
    expect(chatEvents(JSON.stringify({ choices: [{ delta: {}, finish_reason: "length" }] }))).toEqual([{ kind: "finish", reason: "length" }]);
    expect(chatEvents(JSON.stringify({ error: { message: "worker died" } }))).toEqual([{ kind: "error", message: "worker died" }]);
    expect(chatEvents("{not json")[0]?.kind).toBe("error");
  });
});

describe("readChatStream", () => {
  it("decodes a byte stream with multi-byte characters split between chunks", async () => {
    const bytes = new TextEncoder().encode(`${chunk("héllo ✓")}data: [DONE]\n\n`);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
        controller.close();
      },
    });
    const events: StreamEvent[] = [];
    await readChatStream(body, (e) => events.push(e));
    expect(events).toEqual([{ kind: "delta", text: "héllo ✓" }, { kind: "done" }]);
  });
});
