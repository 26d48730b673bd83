// The documents view: what the tenant has ingested (ListDocuments), with delete.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { DocumentInfo } from "../../gen/ts/ragmesh/ingest/v1/ingest_service_pb";
import { ingest, withToken } from "./api";
import { $, el } from "./dom";
import { showError } from "./errors";

let nextPage = "";

function row(doc: DocumentInfo): HTMLTableRowElement {
  const tr = el("tr", { "data-doc-id": doc.docId });
  const updated = doc.updateTime ? timestampDate(doc.updateTime).toLocaleString() : "";
  for (const text of [doc.title, doc.sourceUri, doc.documentType, String(doc.chunkCount), String(doc.docVersion), updated]) {
    tr.append(el("td", {}, text));
  }
  const remove = el("button", { type: "button", class: "quiet", "aria-label": `Delete ${doc.title}` }, "Delete");
  remove.addEventListener("click", () => {
    ingest
      .deleteDocument({ docId: doc.docId }, withToken())
      .then(() => refreshDocuments())
      .catch(showError);
  });
  const cell = el("td");
  cell.append(remove);
  tr.append(cell);
  return tr;
}

export async function refreshDocuments(more = false): Promise<void> {
  const reply = await ingest.listDocuments({ pageSize: 100, pageToken: more ? nextPage : "" }, withToken());
  const body = $("documents").querySelector("tbody") as HTMLTableSectionElement;
  if (!more) body.replaceChildren();
  for (const doc of reply.documents) body.append(row(doc));
  nextPage = reply.nextPageToken;
  $("docs-more").hidden = !nextPage;
  $("documents").dataset.loaded = "true";
}
