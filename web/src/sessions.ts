// The session list: the caller's conversations, newest first, to reopen or delete.
import type { Session } from "../../gen/ts/ragmesh/agent/v1/agent_service_pb";
import { agent, withToken } from "./api";
import { clearConversation, currentSession, reopen } from "./conversation";
import { $, el } from "./dom";
import { showError } from "./errors";

let nextPage = "";

function item(session: Session): HTMLLIElement {
  const row = el("li", { "data-session-id": session.sessionId });
  if (session.sessionId === currentSession()) row.classList.add("current");
  const open = el("button", { type: "button", class: "open", title: session.title }, session.title || "(untitled)");
  open.addEventListener("click", () => {
    showError(null);
    reopen(session.sessionId)
      .then(() => refreshSessions())
      .catch(showError);
  });
  const remove = el("button", { type: "button", class: "delete", "aria-label": `Delete ${session.title}` }, "✕");
  remove.addEventListener("click", () => {
    agent
      .deleteSession({ sessionId: session.sessionId }, withToken())
      .then(() => {
        if (session.sessionId === currentSession()) clearConversation();
        return refreshSessions();
      })
      .catch(showError);
  });
  row.append(open, remove);
  return row;
}

/** Reloads the first page of sessions (``more`` appends the next page instead). */
export async function refreshSessions(more = false): Promise<void> {
  const reply = await agent.listSessions({ pageSize: 20, pageToken: more ? nextPage : "" }, withToken());
  const list = $("sessions");
  if (!more) list.replaceChildren();
  for (const session of reply.sessions) list.append(item(session));
  nextPage = reply.nextPageToken;
  $("sessions-more").hidden = !nextPage;
}
