// The JSON bodies the server answers with. The gateway's routes return plain `Response`s, so the
// OpenAPI schema types requests (paths, queries, bodies) but leaves responses open; these types
// mirror the server's view functions (keys.key_view, jobs.job_view, cluster.views, usage,
// observability.stats, deployments.views) and are the only hand-written part of the API layer.

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface ListOf<T> {
  object: "list";
  data: T[];
}

export type Priority = "high" | "normal" | "low";

export interface ApiKey {
  id: string;
  object: "api_key";
  name: string;
  prefix: string;
  role: "admin" | "user";
  allowed_models: string[] | null;
  default_priority: Priority;
  max_priority: Priority;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  rpm_limit: number | null;
  tpm_limit: number | null;
  max_concurrency: number | null;
  token_quota: number | null;
  budget_usd: number | null;
  budget_period: "daily" | "monthly" | null;
}

/** Only the create call's answer carries the secret. */
export interface CreatedKey extends ApiKey {
  key: string;
}

export interface Model {
  id: string;
  object: "model";
  owned_by?: string;
}

export interface UsageRow {
  period: string;
  key_id: string | null;
  model: string | null;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface UsageTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface UsageReport {
  object: "list";
  granularity: "day" | "hour";
  data: UsageRow[];
  totals: UsageTotals;
}

export interface StatsMinute {
  minute: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
}

export interface Stats {
  generated_at: string;
  current: {
    requests_per_s: number;
    tokens_per_s: number;
    completion_tokens_per_s: number;
    error_rate: number;
    p50_latency_ms: number | null;
    p95_latency_ms: number | null;
    queue_depth: number;
    queue_depth_by_model: Record<string, number>;
    workers: number;
    slots: number;
    running: number;
  };
  series: StatsMinute[];
}

export interface Gpu {
  index: number;
  uuid: string;
  name: string;
  memory_used_bytes: number;
  memory_total_bytes: number;
  utilization: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

export interface Worker {
  id: string;
  object: "worker";
  hostname: string;
  labels: Record<string, string>;
  state: string;
  draining: boolean;
  registered_at: string;
  last_heartbeat_at: string;
  last_heartbeat_age_s: number;
  slots: number;
  running: number;
  queued: number;
  tokens_per_s: number;
  models: string[];
  cpu_count: number | null;
  memory_total_bytes: number | null;
  memory_available_bytes: number | null;
  gpus: Gpu[];
}

export interface Cluster {
  object: "cluster";
  workers: { total: number; draining: number; [state: string]: number };
  gpus: { count: number; memory_used_bytes: number; memory_free_bytes: number; memory_total_bytes: number };
  slots: number;
  running: number;
  queue_depth: Record<string, number>;
  models: string[];
}

export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled" | "dead";

export interface Job {
  id: string;
  object: "job";
  endpoint: "chat.completions" | "completions";
  model: string;
  status: JobStatus;
  priority: Priority;
  stream: boolean;
  attempts: number;
  key_id: string;
  worker_id: string | null;
  request_id: string | null;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  queue_position: number | null;
  estimated_wait_s: number | null;
  error: { message: string; code: string | null } | null;
}

export type DeploymentState = "pending" | "scheduled" | "loading" | "ready" | "failed" | "unschedulable";
export type ReplicaState = "scheduled" | "loading" | "ready" | "standby" | "failed" | "unloading";

export interface ReplicaStatus {
  index: number;
  worker_id: string | null;
  gpu_uuids: string[];
  state: ReplicaState;
  reason: string | null;
  updated_at: string;
}

export interface Deployment {
  id: string;
  object: "deployment";
  name: string;
  engine: string;
  source: string | null;
  engine_options: Record<string, string>;
  replicas: number;
  gpu_memory_gb: number | null;
  gpu_memory_estimated?: boolean;
  gpu_count: number;
  labels: Record<string, string>;
  gpu_type: string | null;
  policy: "spread" | "binpack";
  on_demand: boolean;
  idle_unload_seconds: number | null;
  state: DeploymentState;
  reason: string | null;
  ready_replicas: number;
  created_at: string;
  updated_at: string;
  replica_states: ReplicaStatus[];
}
