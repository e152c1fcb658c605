import { afterEach, describe, expect, it } from "vitest";
import { STORAGE_KEY, TOKEN_KEY, readCredential, readHandoff, refreshDelay, ssoErrorText, withoutHandoff, writeCredential } from "./session";

afterEach(() => localStorage.clear());

describe("kept credentials", () => {
  it("keeps one kind at a time, and drops an expired token", () => {
    writeCredential({ kind: "key", secret: "gc_x" });
    expect(readCredential()).toEqual({ kind: "key", secret: "gc_x" });
    writeCredential({ kind: "user", token: "t", expiresAt: 2_000 });
    expect(localStorage.getItem(STORAGE_KEY)).toBeNull();
    expect(readCredential(1_000)).toEqual({ kind: "user", token: "t", expiresAt: 2_000 });
    expect(readCredential(2_000)).toBeNull();
    expect(localStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it("ignores an unreadable token record", () => {
    localStorage.setItem(TOKEN_KEY, "{not json");
    expect(readCredential()).toBeNull();
  });
});

describe("refreshDelay", () => {
  it("refreshes a 15-minute token a minute early", () => {
    expect(refreshDelay(900_000, 900_000, 0)).toBe(840_000);
  });
  it("refreshes a short token at 80% of its life", () => {
    expect(refreshDelay(100_000, 100_000, 0)).toBe(80_000);
  });
  it("is never negative", () => {
    expect(refreshDelay(1_000, 900_000, 5_000)).toBe(0);
  });
});

describe("hand-offs", () => {
  it("reads and removes the SSO and invitation parameters, keeping the others", () => {
    expect(readHandoff("?sso_code=abc&x=1")).toEqual({ ssoCode: "abc", ssoError: null, invite: null });
    expect(readHandoff("?invite=tok").invite).toBe("tok");
    expect(withoutHandoff("http://h/usage?sso_code=abc&x=1#top")).toBe("/usage?x=1#top");
    expect(withoutHandoff("http://h/?invite=tok")).toBe("/");
  });
  it("words known and unknown SSO errors", () => {
    expect(ssoErrorText("access_denied")).toContain("refused");
    expect(ssoErrorText("weird")).toContain("(weird)");
  });
});
