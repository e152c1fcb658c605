/// <reference types="vitest" />
// The dashboard is built into the Python package (src/gpucloud/webapp/dist), which
// `gpucloud serve` serves at `/`. `npm run dev` proxies the API to a local `make run`.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../src/gpucloud/webapp/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { "/v1": api, "/api": api },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    testTimeout: 20000,
  },
});
