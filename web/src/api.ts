// The edge, the caller's token and the generated clients over grpc-web.
// The token comes from the sign-in form or the URL fragment (#token=..., which
// never reaches a server); it stays in this tab's sessionStorage and goes out as
// `authorization: Bearer` on every call.
import { createClient } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AgentService } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";
import { IngestService } from "../../gen/ts/ragmesh/ingest/v1/ingest_service_pb";

const params = new URLSearchParams(location.search);
export const edge = params.get("edge") ?? "http://127.0.0.1:8080";
const transport = createGrpcWebTransport({ baseUrl: edge });
export const agent = createClient(AgentService, transport);
export const ingest = createClient(IngestService, transport);

const TOKEN_KEY = "ragmesh.token";

export function adoptFragmentToken(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function signIn(jwt: string): void {
  sessionStorage.setItem(TOKEN_KEY, jwt);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Call options with the caller's token and a deadline. */
export function withToken(timeoutMs = 30_000): CallOptions {
  return { headers: { authorization: `Bearer ${token()}` }, timeoutMs };
}

export interface Claims {
  tenant?: string;
  sub?: string;
  exp?: number;
}

/** What the token says about its holder, for display only: the edge and the services verify it. */
export function claims(jwt: string): Claims {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)) as Claims;
  } catch {
    return {};
  }
}
