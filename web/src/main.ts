// The ragmesh browser app on the generated grpc-web client: sign in with a
// token, converse (steps, tool calls and results, tokens, citations, latency,
// feedback), reopen or delete sessions, and see or delete the tenant's documents.
import { adoptFragmentToken, claims, edge, signIn, signOut, token } from "./api";
import { ask, clearConversation } from "./conversation";
import { $ } from "./dom";
import { refreshDocuments } from "./documents";
import { showError } from "./errors";
import { refreshSessions } from "./sessions";

function showIdentity(): void {
  const jwt = token();
  const who = claims(jwt);
  $("identity").textContent = jwt ? `signed in as ${who.sub ?? "?"} · tenant ${who.tenant ?? "?"}` : "not signed in";
  $("signin").hidden = Boolean(jwt);
  $("signout").hidden = !jwt;
  $("app").hidden = !jwt;
  if (jwt) refreshSessions().catch(showError);
}

function showView(view: "chat" | "docs"): void {
  $("tab-chat").setAttribute("aria-pressed", String(view === "chat"));
  $("tab-docs").setAttribute("aria-pressed", String(view === "docs"));
  $("chat-view").hidden = view !== "chat";
  $("sessions-pane").hidden = view !== "chat";
  $("docs-view").hidden = view !== "docs";
  if (view === "docs") refreshDocuments().catch(showError);
}

adoptFragmentToken();
$("edge").textContent = edge;
showIdentity();

$<HTMLFormElement>("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signIn($<HTMLInputElement>("token").value.trim());
  $<HTMLInputElement>("token").value = "";
  showError(null);
  showIdentity();
});
$("signout").addEventListener("click", () => {
  signOut();
  clearConversation();
  showIdentity();
});
$("tab-chat").addEventListener("click", () => showView("chat"));
$("tab-docs").addEventListener("click", () => showView("docs"));
$("docs-refresh").addEventListener("click", () => refreshDocuments().catch(showError));
$("docs-more").addEventListener("click", () => refreshDocuments(true).catch(showError));
$("sessions-more").addEventListener("click", () => refreshSessions(true).catch(showError));
$("new-session").addEventListener("click", () => {
  clearConversation();
  refreshSessions().catch(showError);
});
$<HTMLFormElement>("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const button = $<HTMLButtonElement>("send");
  const input = $<HTMLInputElement>("question");
  const question = input.value.trim();
  if (!question) return;
  button.disabled = true;
  document.body.dataset.busy = "true";
  showError(null);
  ask(question, $<HTMLInputElement>("fresh").checked)
    .then(() => {
      input.value = "";
      return refreshSessions();
    })
    .catch(showError)
    .finally(() => {
      button.disabled = false;
      document.body.dataset.busy = "false";
    });
});
