import { describe, expect, it } from "vitest";
import { curlSnippet, pythonSnippet } from "./snippet";

const req = { model: "gpucloud-sim-1", system: "Be brief.", prompt: `It's "quoted"`, temperature: 0.5, maxTokens: 64 };

describe("snippets", () => {
  it("read the key from an environment variable, never embed one", () => {
    const curl = curlSnippet(req, "http://127.0.0.1:8000");
    expect(curl).toContain('Authorization: Bearer $GPUCLOUD_KEY');
    expect(curl).toContain("http://127.0.0.1:8000/v1/chat/completions");
    expect(curl).toContain(`It'\\''s`); // the single quote survives the shell
    expect(curl).not.toMatch(/gc_[A-Za-z0-9]/);
    const py = pythonSnippet(req, "http://127.0.0.1:8000");
    expect(py).toContain('api_key=os.environ["GPUCLOUD_KEY"]');
    expect(py).toContain('{"role": "system", "content": "Be brief."}');
    expect(py).toContain(`"It's \\"quoted\\""`);
    expect(py).toContain('stream_options={"include_usage": True}');
  });

  it("leave out an empty system prompt", () => {
    expect(pythonSnippet({ ...req, system: " " }, "http://x")).not.toContain('"system"');
  });
});
