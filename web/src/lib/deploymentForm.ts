// The deployment form: what a person typed → the typed body of POST /api/deployments.

import type { Schemas } from "../api/client";
import { type FieldErrors, type Parsed, keyValues, optionalInt, optionalNumber } from "./forms";

export type Engine = Schemas["DeploymentCreate"]["engine"];
export const ENGINES: Engine[] = ["simulated", "transformers", "openai", "sentence-transformers"];

export interface DeploymentForm {
  name: string;
  engine: Engine;
  source: string;
  replicas: string;
  gpu_memory_gb: string;
  gpu_count: string;
  gpu_type: string;
  policy: "spread" | "binpack";
  on_demand: boolean;
  idle_unload_seconds: string;
  engine_options: string;
  labels: string;
}

export const emptyDeploymentForm: DeploymentForm = {
  name: "",
  engine: "simulated",
  source: "",
  replicas: "1",
  gpu_memory_gb: "",
  gpu_count: "",
  gpu_type: "",
  policy: "spread",
  on_demand: false,
  idle_unload_seconds: "",
  engine_options: "",
  labels: "",
};

const OPTION_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const LABEL_KEY = /^[A-Za-z0-9._/-]{1,63}$/;

/** The engines that load weights from somewhere need a source. */
export function needsSource(engine: Engine): boolean {
  return engine !== "simulated";
}

/**
 * The hints beside the GPU fields, as the server fills in what is left empty: a simulated
 * deployment without GPU memory runs on CPU (0 GPUs), one with GPU memory on 1 GPU; the other
 * engines get 1 GPU and have their memory estimated from the model's config.json.
 */
export function gpuHints(engine: Engine): { memory: string; count: string } {
  return engine === "simulated"
    ? { memory: "empty: no GPU (runs on CPU)", count: "empty: 1 when GPU memory is given, else 0 (CPU)" }
    : { memory: "empty: estimated from the model's config.json", count: "empty: 1; 0: CPU only" };
}

export function parseDeploymentForm(form: DeploymentForm): Parsed<Schemas["DeploymentCreate"]> {
  const errors: FieldErrors = {};
  const name = form.name.trim();
  if (!name) errors.name = "Name the model: clients send this name as `model`.";
  else if (name.length > 200) errors.name = "Keep the name under 200 characters.";
  const source = form.source.trim() || null;
  if (needsSource(form.engine) && !source) {
    errors.source = "This engine needs a source: a path under the models directory, a hub id or a server URL.";
  }
  const replicas = optionalInt(form.replicas);
  if (typeof replicas === "string") errors.replicas = replicas;
  else if (replicas === null) errors.replicas = "Enter how many replicas to run (0 or more).";
  else if (replicas > 1000) errors.replicas = "At most 1000 replicas.";
  const memory = optionalNumber(form.gpu_memory_gb, false);
  if (typeof memory === "string") errors.gpu_memory_gb = memory;
  const gpus = optionalInt(form.gpu_count);
  if (typeof gpus === "string") errors.gpu_count = gpus;
  else if (gpus !== null && gpus > 64) errors.gpu_count = "At most 64 GPUs per replica.";
  if (form.engine === "simulated" && memory === null && typeof gpus === "number" && gpus > 0) {
    errors.gpu_memory_gb = "Give the GPU memory per GPU: a simulated model has no config.json to estimate it from.";
  }
  const idle = optionalInt(form.idle_unload_seconds, 1);
  if (typeof idle === "string") errors.idle_unload_seconds = idle;
  const options = keyValues(form.engine_options, OPTION_KEY);
  if (typeof options === "string") errors.engine_options = options;
  const labels = keyValues(form.labels, LABEL_KEY);
  if (typeof labels === "string") errors.labels = labels;
  if (Object.keys(errors).length) return { ok: false, errors };
  return {
    ok: true,
    value: {
      name,
      engine: form.engine,
      source,
      replicas: replicas as number,
      gpu_memory_gb: memory as number | null,
      gpu_count: gpus as number | null, // null: the server's default (see gpuHints)
      gpu_type: form.gpu_type.trim() || null,
      policy: form.policy,
      on_demand: form.on_demand,
      idle_unload_seconds: form.on_demand ? (idle as number | null) : null,
      engine_options: options as Record<string, string>,
      labels: labels as Record<string, string>,
    },
  };
}
