// The generated client must match what the server describes now (other changes add endpoints):
// regenerate from `gpucloud openapi` and compare with the committed schema.d.ts.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("schema.d.ts", () => {
  it("is what `gpucloud openapi` generates today (run `npm run gen:api` in web/ when this fails)", () => {
    let output = "";
    try {
      output = execFileSync("node", ["scripts/gen-api.mjs", "--check"], { encoding: "utf8", stdio: "pipe" });
    } catch (err) {
      output = String((err as { stderr?: string }).stderr ?? err);
    }
    expect(output).toContain("up to date");
  });
});
