// The JSON bodies the server answers with, under the names the pages use. Every type is an alias of
// a schema generated from `gpucloud openapi` (the server documents each route's answer with the
// models of gpucloud/gateway/views.py), so nothing here is written by hand but the error envelope.
import type { components } from "./schema";

type S = components["schemas"];

/** The body of any refused call (gateway/errors.py); error statuses are not in the schema. */
export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface ListOf<T> {
  object: "list";
  data: T[];
}

export type Priority = S["ApiKeyView"]["default_priority"];

export type ApiKey = S["ApiKeyView"];
/** Only the create call's answer carries the secret. */
export type CreatedKey = S["ApiKeyCreated"];
export type KeyDetail = S["ApiKeyDetail"];

export type Model = S["ModelCard"];

export type UsageRow = S["UsageRow"];
export type UsageTotals = S["UsageTotals"];
export type UsageReport = S["UsageReport"];

export type StatsMinute = S["StatsMinute"];
export type Stats = S["Stats"];

export type Gpu = S["GpuView"];
export type Worker = S["WorkerView"];
export type Cluster = S["ClusterView"];

export type Job = S["JobView"];
export type JobStatus = Job["status"];

export type DeploymentState = S["DeploymentView"]["state"];
export type ReplicaState = S["ReplicaView"]["state"];
export type ReplicaStatus = S["ReplicaView"];
export type Deployment = S["DeploymentView"];

export type FileObject = S["FileObject"];
export type Batch = S["BatchObject"];
export type BatchStatus = Batch["status"];
export type WebhookEndpoint = S["WebhookEndpointView"];
export type WebhookEndpointList = S["WebhookEndpointList"];
export type WebhookDelivery = S["WebhookDeliveryView"];

export type User = S["UserView"];
export type AccessToken = S["AccessToken"];
export type Org = S["OrgView"];
export type OrgRole = S["MemberView"]["role"];
export type Member = S["MemberView"];
export type AuditRow = S["AuditRow"];
export type AuditList = S["AuditList"];
export type Invitation = S["InvitationView"];
export type AuthConfig = S["AuthConfig"];
