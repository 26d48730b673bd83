// Errors in words a person understands, with what to do next.
import { Code, ConnectError } from "@connectrpc/connect";

export function describe(err: unknown): string {
  if (err instanceof ConnectError) {
    switch (err.code) {
      case Code.Unauthenticated:
        return "Your sign-in token is missing, expired or not valid here: sign in with a new one (ragmesh token issue).";
      case Code.PermissionDenied:
        return `Your token does not allow this: ${err.rawMessage}`;
      case Code.ResourceExhausted: {
        const wait = /retry in (\d+) s/.exec(err.rawMessage);
        return wait
          ? `Too many requests from your team right now; try again in ${wait[1]} s.`
          : "Too many requests right now; try again in a moment.";
      }
      case Code.Unavailable:
        return "The service is unavailable right now; is the mesh up? Try again in a moment.";
      case Code.DeadlineExceeded:
        return "That took too long and was stopped; try again, or ask a narrower question.";
      case Code.NotFound:
        return `Not found: ${err.rawMessage}`;
      case Code.InvalidArgument:
        return `That request was not accepted: ${err.rawMessage}`;
      default:
        return `${Code[err.code]}: ${err.rawMessage}`;
    }
  }
  return String(err);
}

export function showError(err: unknown): void {
  const box = document.getElementById("error");
  if (box) box.textContent = err === null ? "" : describe(err);
}
