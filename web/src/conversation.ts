// The conversation view: each turn streams its steps, tool calls and results,
// answer tokens and citations as they arrive, then the latency breakdown and
// thumbs up/down (SubmitFeedback) on the answer.
import { CacheHit, Rating, Step, StepStatus } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";
import type { Citation, LatencyBreakdown, SessionMessage } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";
import { agent, withToken } from "./api";
import { $, el } from "./dom";
import { showError } from "./errors";

let sessionId = "";

export function currentSession(): string {
  return sessionId;
}

export function clearConversation(): void {
  sessionId = "";
  $("thread").replaceChildren();
}

interface Turn {
  root: HTMLLIElement;
  steps: HTMLOListElement;
  tools: HTMLOListElement;
  answer: HTMLElement;
  citations: HTMLOListElement;
  latency: HTMLParagraphElement;
  feedback: HTMLDivElement;
}

function newTurn(question: string): Turn {
  const root = el("li", { class: "turn" });
  root.append(el("p", { class: "question" }, question));
  const turn: Turn = {
    root,
    steps: el("ol", { class: "steps", "aria-label": "progress" }),
    tools: el("ol", { class: "tools", "aria-label": "tool calls" }),
    answer: el("article", { class: "answer", "aria-live": "polite" }),
    citations: el("ol", { class: "citations", "aria-label": "sources" }),
    latency: el("p", { class: "latency" }),
    feedback: el("div", { class: "feedback", hidden: "" }),
  };
  root.append(turn.steps, turn.tools, turn.answer, turn.citations, turn.latency, turn.feedback);
  $("thread").append(root);
  return turn;
}

function stepName(step: Step): string {
  return Step[step].toLowerCase().replace("_", " ");
}

function renderCitations(list: HTMLOListElement, citations: Citation[]): void {
  list.replaceChildren();
  for (const c of citations) {
    const item = el("li", { "data-chunk-id": c.chunkId, value: String(c.marker) });
    const link = el("a", { href: c.sourceUri, target: "_blank", rel: "noopener" }, c.title || c.sourceUri);
    item.append(link, el("span", { class: "muted" }, ` ${c.sourceUri}`), el("span", { class: "snippet" }, c.snippet));
    list.append(item);
  }
}

function renderLatency(target: HTMLParagraphElement, l: LatencyBreakdown | undefined, cache: CacheHit): void {
  if (!l) return;
  const ms = (v: number): string => `${v.toFixed(0)} ms`;
  target.textContent =
    `first token ${ms(l.timeToFirstTokenMs)} · total ${ms(l.totalMs)} · planning ${ms(l.planningMs)}` +
    ` · retrieval ${ms(l.retrievalMs)} · tools ${ms(l.toolsMs)} · cache ${CacheHit[cache].toLowerCase()}`;
}

function renderFeedback(turn: Turn, session: string, messageId: string, given: Rating): void {
  turn.feedback.hidden = false;
  turn.feedback.replaceChildren();
  const status = el("span", { class: "muted", role: "status" });
  const buttons: [Rating, string, string][] = [
    [Rating.UP, "▲ helpful", "Helpful"],
    [Rating.DOWN, "▼ not helpful", "Not helpful"],
  ];
  const pressed = (rating: Rating): void => {
    for (const b of turn.feedback.querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b.dataset.rating === String(rating)));
    }
  };
  for (const [rating, text, label] of buttons) {
    const button = el("button", { type: "button", "aria-label": label, "data-rating": String(rating) }, text);
    button.addEventListener("click", () => {
      agent
        .submitFeedback({ sessionId: session, messageId, rating }, withToken())
        .then(() => {
          pressed(rating);
          status.textContent = "Thanks, recorded.";
          turn.root.dataset.rated = Rating[rating].toLowerCase();
        })
        .catch(showError);
    });
    turn.feedback.append(button);
  }
  turn.feedback.append(status);
  pressed(given);
}

/** Asks ``question`` in the current session (a new one when none) and renders the stream. */
export async function ask(question: string, fresh: boolean): Promise<void> {
  const turn = newTurn(question);
  let deltas = 0;
  let messageId = "";
  const started = performance.now();
  for await (const res of agent.streamChat(
    { message: question, sessionId, options: { bypassCache: fresh } },
    withToken(300_000),
  )) {
    sessionId = res.sessionId || sessionId;
    messageId = res.messageId || messageId;
    const ev = res.event;
    switch (ev.case) {
      case "step": {
        const id = `step-${ev.value.step}`;
        let item = turn.steps.querySelector<HTMLLIElement>(`[data-step="${id}"]`);
        if (!item) {
          item = el("li", { "data-step": id });
          turn.steps.append(item);
        }
        if (ev.value.status === StepStatus.STARTED) {
          item.textContent = `${stepName(ev.value.step)}…`;
        } else {
          const took = ev.value.durationMs ? ` (${ev.value.durationMs.toFixed(0)} ms)` : "";
          const failed = ev.value.status === StepStatus.FAILED ? " failed" : "";
          item.textContent = `${stepName(ev.value.step)}${failed}${took}${ev.value.detail ? ": " + ev.value.detail : ""}`;
        }
        break;
      }
      case "toolCall": {
        const call = el("li", { class: "tool-call", "data-call-id": ev.value.callId });
        call.append(el("code", {}, `${ev.value.tool}(${ev.value.argumentsJson})`));
        turn.tools.append(call);
        break;
      }
      case "toolResult": {
        const call =
          turn.tools.querySelector<HTMLLIElement>(`[data-call-id="${CSS.escape(ev.value.callId)}"]`) ??
          turn.tools.appendChild(el("li", { class: "tool-call", "data-call-id": ev.value.callId }));
        const result = el("pre", { class: ev.value.isError ? "tool-result failed" : "tool-result" }, ev.value.output);
        call.append(result);
        break;
      }
      case "token": {
        deltas += 1;
        // Each delta is its own span, stamped with when it arrived (ms since the question).
        const span = el("span", { class: "delta", "data-at": (performance.now() - started).toFixed(1) }, ev.value.text);
        turn.answer.append(span);
        turn.answer.dataset.deltas = String(deltas);
        break;
      }
      case "citations":
        renderCitations(turn.citations, ev.value.citations);
        break;
      case "final":
        if (!deltas) turn.answer.textContent = ev.value.answer;
        renderCitations(turn.citations, ev.value.citations);
        renderLatency(turn.latency, ev.value.latency, ev.value.cacheHit);
        turn.root.dataset.messageId = messageId;
        renderFeedback(turn, sessionId, messageId, Rating.UNSPECIFIED);
        turn.root.dataset.done = "true";
        break;
      default:
        break;
    }
  }
}

/** Shows a stored session's messages (GetSession) and continues in it. */
export async function reopen(id: string): Promise<void> {
  const reply = await agent.getSession({ sessionId: id }, withToken());
  clearConversation();
  sessionId = id;
  let turn: Turn | undefined;
  for (const message of reply.session?.messages ?? []) {
    if (message.role === "user") {
      turn = newTurn(message.content);
    } else {
      turn ??= newTurn("");
      renderStored(turn, id, message);
      turn = undefined;
    }
  }
}

function renderStored(turn: Turn, session: string, message: SessionMessage): void {
  turn.answer.textContent = message.content;
  renderCitations(turn.citations, message.citations);
  turn.root.dataset.messageId = message.messageId;
  turn.root.dataset.done = "true";
  if (message.rating !== Rating.UNSPECIFIED) turn.root.dataset.rated = Rating[message.rating].toLowerCase();
  renderFeedback(turn, session, message.messageId, message.rating);
}
