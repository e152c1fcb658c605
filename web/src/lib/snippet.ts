// The playground's request as code a person can paste: never with the real key, always reading it
// from the GPUCLOUD_KEY environment variable.

export interface ChatRequest {
  model: string;
  system: string;
  prompt: string;
  temperature: number;
  maxTokens: number;
}

export function messagesOf(req: ChatRequest): { role: "system" | "user"; content: string }[] {
  const out: { role: "system" | "user"; content: string }[] = [];
  if (req.system.trim()) out.push({ role: "system", content: req.system });
  out.push({ role: "user", content: req.prompt });
  return out;
}

export function curlSnippet(req: ChatRequest, origin: string): string {
  const body = {
    model: req.model,
    messages: messagesOf(req),
    temperature: req.temperature,
    max_tokens: req.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  };
  const json = JSON.stringify(body, null, 2).replace(/'/g, "'\\''");
  return [
    `curl -N ${origin}/v1/chat/completions \\`,
    `  -H "Authorization: Bearer $GPUCLOUD_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d '${json}'`,
  ].join("\n");
}

function py(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid Python string literal
}

export function pythonSnippet(req: ChatRequest, origin: string): string {
  const messages = messagesOf(req)
    .map((m) => `        {"role": ${py(m.role)}, "content": ${py(m.content)}},`)
    .join("\n");
  return [
    "import os",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${py(`${origin}/v1`)}, api_key=os.environ["GPUCLOUD_KEY"])`,
    "stream = client.chat.completions.create(",
    `    model=${py(req.model)},`,
    "    messages=[",
    messages,
    "    ],",
    `    temperature=${req.temperature},`,
    `    max_tokens=${req.maxTokens},`,
    "    stream=True,",
    '    stream_options={"include_usage": True},',
    ")",
    "for chunk in stream:",
    "    if chunk.choices:",
    '        print(chunk.choices[0].delta.content or "", end="", flush=True)',
    "    elif chunk.usage:",
    '        print("\\n", chunk.usage)',
  ].join("\n");
}
