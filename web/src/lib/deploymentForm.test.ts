import { describe, expect, it } from "vitest";
import { emptyDeploymentForm, parseDeploymentForm } from "./deploymentForm";

describe("parseDeploymentForm", () => {
  it("builds the contract's body with defaults", () => {
    const r = parseDeploymentForm({ ...emptyDeploymentForm, name: "sim-2" });
    expect(r).toEqual({
      ok: true,
      value: {
        name: "sim-2", engine: "simulated", source: null, replicas: 1, gpu_memory_gb: null, gpu_count: null, gpu_type: null,
        policy: "spread", on_demand: false, idle_unload_seconds: null, engine_options: {}, labels: {},
      },
    });
  });

  it("parses options, labels, on-demand and GPU memory", () => {
    const r = parseDeploymentForm({
      ...emptyDeploymentForm, name: "llama", engine: "transformers", source: "meta/llama", replicas: "2", gpu_memory_gb: "20.5",
      gpu_count: "0", gpu_type: "H100", policy: "binpack", on_demand: true, idle_unload_seconds: "300",
      engine_options: "dtype=bfloat16, max_len = 4096", labels: "zone=eu",
    });
    expect(r.ok && r.value).toMatchObject({
      engine: "transformers", source: "meta/llama", replicas: 2, gpu_memory_gb: 20.5, gpu_count: 0, gpu_type: "H100", policy: "binpack",
      on_demand: true, idle_unload_seconds: 300, engine_options: { dtype: "bfloat16", max_len: "4096" }, labels: { zone: "eu" },
    });
  });

  it("leaves the GPU count to the server unless it is given", () => {
    const gpu = parseDeploymentForm({ ...emptyDeploymentForm, name: "sim", gpu_memory_gb: "8" });
    expect(gpu.ok && gpu.value).toMatchObject({ gpu_memory_gb: 8, gpu_count: null });
    const two = parseDeploymentForm({ ...emptyDeploymentForm, name: "sim", gpu_memory_gb: "8", gpu_count: "2" });
    expect(two.ok && two.value).toMatchObject({ gpu_memory_gb: 8, gpu_count: 2 });
    const cpu = parseDeploymentForm({ ...emptyDeploymentForm, name: "sim", gpu_count: "0" });
    expect(cpu.ok && cpu.value).toMatchObject({ gpu_memory_gb: null, gpu_count: 0 });
  });

  it("asks for GPU memory when a simulated model is given GPUs", () => {
    const r = parseDeploymentForm({ ...emptyDeploymentForm, name: "sim", gpu_count: "1" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors)).toEqual(["gpu_memory_gb"]);
  });

  it("explains each mistake beside its field", () => {
    const r = parseDeploymentForm({
      ...emptyDeploymentForm, engine: "openai", replicas: "", gpu_memory_gb: "0", gpu_count: "65", engine_options: "oops", labels: "bad key=1",
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(["engine_options", "gpu_count", "gpu_memory_gb", "labels", "name", "replicas", "source"]);
  });
});
