// Try a model: a streamed chat completion rendered as it arrives, with a stop button, time to
// first token and tokens/s, and the same request as curl or Python code (with a placeholder key).
import { type FormEvent, useRef, useState } from "react";
import { unwrap } from "../api/client";
import type { ListOf, Model } from "../api/views";
import { useSession } from "../auth";
import { CopyButton, Field, Select } from "../components/Controls";
import { Empty, ErrorBox, Gate } from "../components/Status";
import { ms, num } from "../lib/format";
import { useLoad } from "../lib/hooks";
import { type ChatRequest, curlSnippet, pythonSnippet } from "../lib/snippet";
import { type StreamResult, streamChat } from "../lib/stream";

export function Playground() {
  const { client } = useSession();
  const models = useLoad(async () => unwrap<ListOf<Model>>(await client.GET("/v1/models")).data, [client]);
  return (
    <section aria-labelledby="playground-title">
      <h1 id="playground-title">Playground</h1>
      <Gate {...models} what="models">
        {(list) =>
          list.length ? (
            <Chat models={list.map((m) => m.id)} />
          ) : (
            <Empty>No model is available to this key yet: start a worker or create a deployment, or ask an admin to allow a model for this key.</Empty>
          )
        }
      </Gate>
    </section>
  );
}

function Chat({ models }: { models: string[] }) {
  const { client } = useSession();
  const [req, setReq] = useState<ChatRequest>({
    model: models[0] ?? "",
    system: "You are a helpful assistant.",
    prompt: "",
    temperature: 0.7,
    maxTokens: 128,
  });
  const [reply, setReply] = useState("");
  const [ttft, setTtft] = useState<number | null>(null);
  const [result, setResult] = useState<StreamResult | null>(null);
  const [running, setRunning] = useState(false);
  const [tab, setTab] = useState<"curl" | "python">("curl");
  const abort = useRef<AbortController | null>(null);
  const set = <K extends keyof ChatRequest>(k: K, v: ChatRequest[K]) => setReq((r) => ({ ...r, [k]: v }));

  async function send(e?: FormEvent) {
    e?.preventDefault();
    if (running || !req.prompt.trim()) return;
    const controller = new AbortController();
    abort.current = controller;
    setRunning(true);
    setReply("");
    setTtft(null);
    setResult(null);
    const done = await streamChat(client, req, controller.signal, (p) => {
      setReply(p.text);
      setTtft(p.ttftMs);
    });
    setResult(done);
    setRunning(false);
    abort.current = null;
  }

  const origin = window.location.origin;
  const snippet = tab === "curl" ? curlSnippet(req, origin) : pythonSnippet(req, origin);
  return (
    <div className="playground">
      <form className="card" onSubmit={send} aria-label="Chat request">
        <Select label="Model" value={req.model} options={models} onChange={(e) => set("model", e.target.value)} />
        <div className="field">
          <label htmlFor="pg-system">System prompt</label>
          <textarea id="pg-system" rows={2} value={req.system} onChange={(e) => set("system", e.target.value)} />
        </div>
        <div className="row">
          <Field label="Temperature" type="number" min={0} max={2} step={0.1} value={req.temperature} onChange={(e) => set("temperature", Number(e.target.value))} />
          <Field label="Max tokens" type="number" min={1} step={1} value={req.maxTokens} onChange={(e) => set("maxTokens", Math.max(1, Math.floor(Number(e.target.value) || 1)))} />
        </div>
        <div className="field">
          <label htmlFor="pg-prompt">Message</label>
          <textarea
            id="pg-prompt"
            rows={3}
            value={req.prompt}
            placeholder="Ask something… (Enter sends, Shift+Enter adds a line)"
            onChange={(e) => set("prompt", e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) void send(e);
            }}
          />
        </div>
        <div className="actions">
          <button type="submit" disabled={running || !req.prompt.trim()}>
            {running ? "Streaming…" : "Send"}
          </button>
          <button type="button" className="danger" disabled={!running} onClick={() => abort.current?.abort()}>
            Stop
          </button>
        </div>
      </form>
      <div className="card">
        <h2>Reply</h2>
        <div className="reply" aria-live="polite" data-testid="reply">
          {reply || <span className="muted">{running ? "Waiting for the first token…" : "The reply appears here as it streams."}</span>}
        </div>
        <dl className="metrics-inline">
          <div><dt>Time to first token</dt><dd data-testid="ttft">{ms(ttft)}</dd></div>
          <div><dt>Tokens / s</dt><dd data-testid="tps">{num(result?.tokensPerS ?? null, 1)}</dd></div>
          <div><dt>Tokens</dt><dd>{result?.usage ? `${result.usage.prompt_tokens} in, ${result.usage.completion_tokens} out` : "—"}</dd></div>
          <div><dt>Finish</dt><dd>{result?.stopped ? "stopped by you" : result?.finishReason ?? "—"}</dd></div>
        </dl>
        {result?.error && <ErrorBox title="The request failed">{result.error}</ErrorBox>}
      </div>
      <div className="card">
        <h2>The same request as code</h2>
        <div className="tabs" role="tablist">
          {(["curl", "python"] as const).map((t) => (
            <button key={t} type="button" role="tab" aria-selected={tab === t} className={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)}>
              {t === "curl" ? "curl" : "Python (openai)"}
            </button>
          ))}
        </div>
        <pre className="code" data-testid="snippet">{snippet}</pre>
        <p className="muted">The key is read from the <code>GPUCLOUD_KEY</code> environment variable: export it first.</p>
        <CopyButton text={snippet} label="Copy code" />
      </div>
    </div>
  );
}
