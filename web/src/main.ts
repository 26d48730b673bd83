// A small chat page on the generated grpc-web client: StreamChat events are
// rendered as they arrive (steps, answer tokens, citations, final timings).
// The caller signs in with a token (ragmesh token issue): pasted into the form,
// or handed over in the URL fragment (#token=..., never sent to a server); it
// stays in this tab's sessionStorage and goes out as `authorization: Bearer`.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AgentService, StepStatus, Step } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";
import type { Citation } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";

const params = new URLSearchParams(location.search);
const edge = params.get("edge") ?? "http://127.0.0.1:8080";
const client = createClient(AgentService, createGrpcWebTransport({ baseUrl: edge }));

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
let sessionId = "";

const TOKEN_KEY = "ragmesh.token";
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) {
  sessionStorage.setItem(TOKEN_KEY, fragment.get("token") ?? "");
  history.replaceState(null, "", location.pathname + location.search);
}

function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

interface Claims {
  tenant?: string;
  sub?: string;
  exp?: number;
}

// What the token says about its holder, for display only: the edge and the services verify it.
function claims(jwt: string): Claims {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)) as Claims;
  } catch {
    return {};
  }
}

function showIdentity(): void {
  const jwt = token();
  const who = claims(jwt);
  $("identity").textContent = jwt ? `signed in as ${who.sub ?? "?"} · tenant ${who.tenant ?? "?"}` : "not signed in";
  $("signin").hidden = Boolean(jwt);
  $("signout").hidden = !jwt;
}

function stepName(step: Step): string {
  return Step[step].toLowerCase().replace("_", " ");
}

function renderCitations(citations: Citation[]): void {
  const list = $<HTMLOListElement>("citations");
  list.replaceChildren();
  for (const c of citations) {
    const item = document.createElement("li");
    item.dataset.chunkId = c.chunkId;
    item.textContent = `[${c.marker}] ${c.title || c.sourceUri} — ${c.sourceUri}`;
    const snippet = document.createElement("span");
    snippet.className = "snippet";
    snippet.textContent = c.snippet;
    item.append(snippet);
    list.append(item);
  }
}

function describe(err: unknown): string {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unauthenticated)
      return "Your sign-in token is missing, expired or not valid here: sign in with a new one (ragmesh token issue).";
    if (err.code === Code.PermissionDenied) return `Your token does not allow this: ${err.rawMessage}`;
    if (err.code === Code.ResourceExhausted) return "Too many requests right now; try again in a moment.";
    if (err.code === Code.Unavailable) return "The service is unavailable; is the mesh up?";
    return `${Code[err.code]}: ${err.rawMessage}`;
  }
  return String(err);
}

async function ask(question: string): Promise<void> {
  const answer = $("answer");
  const steps = $<HTMLOListElement>("steps");
  answer.textContent = "";
  steps.replaceChildren();
  $("citations").replaceChildren();
  $("meta").textContent = "";
  $("error").textContent = "";
  let deltas = 0;
  for await (const res of client.streamChat(
    { message: question, sessionId },
    { headers: { authorization: `Bearer ${token()}` }, timeoutMs: 180_000 },
  )) {
    sessionId = res.sessionId || sessionId;
    const ev = res.event;
    switch (ev.case) {
      case "step": {
        if (ev.value.status === StepStatus.STARTED) {
          const li = document.createElement("li");
          li.id = `step-${ev.value.step}`;
          li.textContent = `${stepName(ev.value.step)}…`;
          steps.append(li);
        } else {
          const li = document.getElementById(`step-${ev.value.step}`) ?? steps.appendChild(document.createElement("li"));
          const took = ev.value.durationMs ? ` (${ev.value.durationMs.toFixed(0)} ms)` : "";
          li.textContent = `${stepName(ev.value.step)}${took}${ev.value.detail ? ": " + ev.value.detail : ""}`;
        }
        break;
      }
      case "token":
        deltas += 1;
        answer.textContent += ev.value.text;
        answer.dataset.deltas = String(deltas);
        break;
      case "citations":
        renderCitations(ev.value.citations);
        break;
      case "final": {
        answer.textContent = ev.value.answer;
        renderCitations(ev.value.citations);
        const l = ev.value.latency;
        $("meta").textContent =
          `first token ${l?.timeToFirstTokenMs.toFixed(0)} ms · total ${l?.totalMs.toFixed(0)} ms` +
          ` · retrieval ${l?.retrievalMs.toFixed(0)} ms · cache ${ev.value.cacheHit}`;
        document.body.dataset.done = "true";
        break;
      }
      default:
        break;
    }
  }
}

$("edge").textContent = edge;
showIdentity();
$<HTMLFormElement>("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $<HTMLInputElement>("token").value.trim());
  $<HTMLInputElement>("token").value = "";
  showIdentity();
});
$<HTMLButtonElement>("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionId = "";
  showIdentity();
});
$<HTMLFormElement>("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const button = $<HTMLButtonElement>("send");
  const question = $<HTMLInputElement>("question").value.trim();
  if (!question) return;
  button.disabled = true;
  document.body.dataset.done = "false";
  ask(question)
    .catch((err: unknown) => {
      $("error").textContent = describe(err);
      document.body.dataset.done = "error";
    })
    .finally(() => {
      button.disabled = false;
    });
});
