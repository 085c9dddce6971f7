import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { AgentLockBusyError } from "../engine/agent-lock.js";
import { FilterError } from "../engine/filter.js";
import { QueueAccessError, queueAccessError } from "../engine/layout.js";
import { PlanError } from "../engine/plan.js";
import { QmailSendControlError } from "../engine/qmail-send.js";
import { QuarantineRefusedError } from "../engine/quarantine.js";
import { FingerprintMismatchError, MessageIdError, MessageNotFoundError } from "../engine/show.js";
import { RpcError, toRpcError } from "./rpc-error.js";

function errno(code: string, path?: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed`), { code, ...(path ? { path } : {}) });
}

describe("toRpcError", () => {
  it("keeps an RpcError as it is", () => {
    const e = new RpcError(status.UNIMPLEMENTED, "later");
    assert.equal(toRpcError(e), e);
  });

  it("maps what the caller got wrong, or what is gone, to its own status with the engine's message", () => {
    const cases: [Error, status][] = [
      [new FilterError('invalid pattern "a(": missing )'), status.INVALID_ARGUMENT],
      [new MessageIdError('"x1" is not a message id'), status.INVALID_ARGUMENT],
      [new MessageNotFoundError("no message 7 in /q"), status.NOT_FOUND],
      [
        new FingerprintMismatchError("message 7 is not the message you listed", "9:ab"),
        status.FAILED_PRECONDITION,
      ],
      [new PlanError("plan 0a is unknown, expired or already executed"), status.FAILED_PRECONDITION],
      [new QuarantineRefusedError("refusing to quarantine: 2% space free"), status.FAILED_PRECONDITION],
      [new QmailSendControlError("cannot stop qmail-send (pid 9)", []), status.FAILED_PRECONDITION],
      [new AgentLockBusyError("/state/locks/q.lock", undefined), status.ABORTED],
    ];
    for (const [error, code] of cases) {
      const mapped = toRpcError(error);
      assert.equal(mapped.code, code, error.name);
      assert.equal(mapped.message, error.message);
    }
  });

  it("passes the engine's queue errors on as FAILED_PRECONDITION with their message", () => {
    const e = queueAccessError("read", "/var/qmail/queue/mess", errno("EACCES"));
    assert.ok(e instanceof QueueAccessError);
    const mapped = toRpcError(e);
    assert.equal(mapped.code, status.FAILED_PRECONDITION);
    assert.equal(
      mapped.message,
      "cannot read /var/qmail/queue/mess: EACCES (run the agent as root or as qmails)",
    );
    assert.equal(
      toRpcError(queueAccessError("read", "/q/mess", errno("EMFILE"))).code,
      status.RESOURCE_EXHAUSTED,
    );
  });

  it("names the path and the fix of a bare errno error", () => {
    const denied = toRpcError(errno("EACCES", "/var/qmail/queue/lock/sendmutex"));
    assert.equal(denied.code, status.FAILED_PRECONDITION);
    assert.equal(
      denied.message,
      "cannot read /var/qmail/queue/lock/sendmutex: EACCES (run the agent as root or as qmails)",
    );
    assert.match(
      toRpcError(errno("ENOENT", "/q")).message,
      /^cannot read \/q: ENOENT \(is the queue root right\? check --queue\)$/,
    );
    assert.equal(toRpcError(errno("ENFILE")).code, status.RESOURCE_EXHAUSTED);
    assert.equal(toRpcError(errno("EIO", "/q/x")).code, status.INTERNAL);
    assert.match(toRpcError(errno("EIO", "/q/x")).message, /^cannot read \/q\/x: EIO: /);
  });

  it("reports anything else as INTERNAL with its message", () => {
    const mapped = toRpcError(new TypeError("x is undefined"));
    assert.equal(mapped.code, status.INTERNAL);
    assert.equal(mapped.message, "x is undefined");
    assert.equal(toRpcError("thrown string").message, "thrown string");
  });
});
