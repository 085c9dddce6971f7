import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildQueue, QueueBuilder, qmailOwners, records } from "./queue-builder.js";

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "qmfleet-builder-"));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function freshRoot(): string {
  return path.join(tmp, `q${n++}`, "queue");
}

function ino(p: string): string {
  return fs.lstatSync(p, { bigint: true }).ino.toString();
}

const mode = (p: string) => fs.lstatSync(p).mode & 0o7777;

describe("QueueBuilder layout", () => {
  test("creates qmail's directories, split dirs and lock files with qmail's modes", () => {
    const root = freshRoot();
    QueueBuilder.create(root, { split: 7 });
    for (const kind of ["mess", "info", "local", "remote"]) {
      const names = fs.readdirSync(path.join(root, kind)).sort((a, b) => Number(a) - Number(b));
      assert.deepEqual(names, ["0", "1", "2", "3", "4", "5", "6"]);
    }
    assert.equal(mode(path.join(root, "mess")), 0o750);
    assert.equal(mode(path.join(root, "info", "3")), 0o700);
    assert.equal(mode(path.join(root, "pid")), 0o700);
    assert.deepEqual(fs.readdirSync(path.join(root, "todo")), []);
    assert.ok(fs.lstatSync(path.join(root, "lock", "trigger")).isFIFO());
    assert.equal(mode(path.join(root, "lock", "trigger")), 0o622);
    assert.equal(fs.statSync(path.join(root, "lock", "tcpto")).size, 1024);
    assert.equal(fs.statSync(path.join(root, "lock", "sendmutex")).size, 0);
  });

  test("big-todo splits todo/ and intd/ but not bounce/", () => {
    const root = freshRoot();
    QueueBuilder.create(root, { split: 5, bigTodo: true });
    assert.equal(fs.readdirSync(path.join(root, "todo")).length, 5);
    assert.equal(fs.readdirSync(path.join(root, "intd")).length, 5);
    assert.deepEqual(fs.readdirSync(path.join(root, "bounce")), []);
  });

  test("rejects a split that is not a positive integer, accepts 1", () => {
    assert.throws(() => QueueBuilder.create(freshRoot(), { split: 0 }), /split must be a positive integer/);
    const root = freshRoot();
    QueueBuilder.create(root, { split: 1 });
    assert.deepEqual(fs.readdirSync(path.join(root, "mess")), ["0"]);
  });

  test("writes control/virtualdomains in qmail's home, beside the queue", () => {
    const root = freshRoot();
    QueueBuilder.create(root, { virtualDomains: { "vdom.example": "vp", "example.jp": "ex" } });
    const text = fs.readFileSync(path.join(root, "..", "control", "virtualdomains"), "utf8");
    assert.equal(text, "vdom.example:vp\nexample.jp:ex\n");
  });
});

describe("QueueBuilder.add", () => {
  test("a preprocessed message: mess named by its own inode, info mtime = birth time, T/D records", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 23 });
    const m = q.add({
      message: "Subject: hi\n\nbody\n",
      sender: "a@src.example",
      birthTime: 1795839072,
      recipients: [
        { address: "ok@mx.test", channel: "local", done: true },
        { address: "user@vdom.example", stored: "vp-user@vdom.example", channel: "local" },
        { address: "r@good.example", channel: "remote" },
      ],
      bounce: "<x@y>:\nfailed\n\n",
    });
    const split = Number(BigInt(m.id) % 23n);
    assert.equal(m.paths.mess, `mess/${split}/${m.id}`);
    assert.equal(ino(path.join(root, m.paths.mess)), m.id);
    assert.equal(m.inode, m.id);
    assert.equal(fs.readFileSync(path.join(root, m.paths.mess), "utf8"), "Subject: hi\n\nbody\n");
    assert.equal(fs.readFileSync(path.join(root, m.paths.info), "latin1"), "Fa@src.example\0");
    assert.equal(fs.statSync(path.join(root, m.paths.info)).mtimeMs, 1795839072000);
    assert.equal(
      fs.readFileSync(path.join(root, m.paths.local), "latin1"),
      "Dok@mx.test\0Tvp-user@vdom.example\0",
    );
    assert.equal(fs.readFileSync(path.join(root, m.paths.remote), "latin1"), "Tr@good.example\0");
    assert.equal(fs.readFileSync(path.join(root, `bounce/${m.id}`), "utf8"), "<x@y>:\nfailed\n\n");
    assert.equal(mode(path.join(root, m.paths.mess)), 0o644);
    assert.equal(mode(path.join(root, m.paths.info)), 0o600);
    assert.deepEqual(fs.readdirSync(path.join(root, "pid")), [], "the scratch file is unlinked");
    assert.deepEqual(fs.readdirSync(path.join(root, "todo")), []);
    assert.deepEqual(
      [...m.written].sort(),
      [m.paths.bounce, m.paths.info, m.paths.local, m.paths.mess, m.paths.remote].sort(),
    );
  });

  test("a message with only remote recipients has no local file", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root).add({ message: "x\n" });
    assert.ok(fs.existsSync(path.join(root, m.paths.remote)));
    assert.ok(!fs.existsSync(path.join(root, m.paths.local)));
  });

  test("todo: intd and todo are one inode holding u, p, F, T records", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const m = q.add({
      message: "x\n",
      state: "todo",
      sender: "t1@src.example",
      uid: 0,
      pid: 16345,
      recipients: [{ address: "r11@good.example" }, { address: "loc@mx.test", channel: "local" }],
    });
    assert.equal(m.paths.todo, `todo/${m.id}`);
    const todo = path.join(root, m.paths.todo);
    assert.equal(ino(todo), ino(path.join(root, m.paths.intd)));
    assert.equal(
      fs.readFileSync(todo, "latin1"),
      "u0\0p16345\0Ft1@src.example\0Tr11@good.example\0Tloc@mx.test\0",
    );
    assert.ok(!fs.existsSync(path.join(root, m.paths.info)));
  });

  test("big-todo puts todo and intd in split dirs", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root, { split: 7, bigTodo: true }).add({ message: "x\n", state: "todo" });
    const n = Number(BigInt(m.id) % 7n);
    assert.equal(m.paths.todo, `todo/${n}/${m.id}`);
    assert.ok(fs.existsSync(path.join(root, m.paths.todo)));
    assert.equal(m.paths.bounce, `bounce/${m.id}`);
  });

  test("being-written: intd only, no todo link", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root).add({ message: "x\n", state: "being-written" });
    assert.ok(fs.existsSync(path.join(root, m.paths.intd)));
    assert.ok(!fs.existsSync(path.join(root, m.paths.todo)));
    assert.ok(fs.existsSync(path.join(root, m.paths.mess)));
  });

  test("name: true gives files a name that is not the mess inode and no other file can get", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const m = q.add({ message: "x\n", name: true });
    assert.notEqual(m.id, m.inode);
    assert.equal(ino(path.join(root, m.paths.mess)), m.inode);
    assert.ok(fs.existsSync(path.join(root, m.paths.info)));
    const others = Array.from({ length: 50 }, () => q.add({ message: "y\n" }).id);
    assert.ok(!others.includes(m.id));
    q.close();
  });

  test("wrongSplit moves the chosen files to the next split dir", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root, { split: 7 }).add({ message: "x\n", wrongSplit: ["info"] });
    const right = Number(BigInt(m.id) % 7n);
    const wrong = (right + 1) % 7;
    assert.ok(fs.existsSync(path.join(root, `info/${wrong}/${m.id}`)));
    assert.ok(!fs.existsSync(path.join(root, `info/${right}/${m.id}`)));
    assert.ok(fs.existsSync(path.join(root, `mess/${right}/${m.id}`)));
  });

  test("omit makes orphans; an omitted mess's id stays reserved until close()", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root);
    const orphanInfo = q.add({ message: "x\n", omit: ["mess"] });
    assert.ok(!fs.existsSync(path.join(root, orphanInfo.paths.mess)));
    assert.ok(fs.existsSync(path.join(root, orphanInfo.paths.info)));
    const orphanMess = q.add({ message: "x\n", omit: ["info", "remote"] });
    assert.deepEqual(orphanMess.written, [orphanMess.paths.mess]);
    const orphanBounce = q.add({ message: "x\n", omit: ["mess", "info", "remote"], bounce: "b\n" });
    assert.deepEqual(orphanBounce.written, [orphanBounce.paths.bounce]);
    const later = Array.from({ length: 50 }, () => q.add({ message: "y\n" }).id);
    assert.ok(!later.includes(orphanInfo.id) && !later.includes(orphanBounce.id));
    q.close();
  });

  test("raw records are written byte for byte, even for a channel without recipients", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root).add({
      message: "x\n",
      raw: { info: Buffer.from("Fno-nul"), local: Buffer.from("Xodd\0Tok@x\0"), remote: Buffer.alloc(0) },
    });
    assert.equal(fs.readFileSync(path.join(root, m.paths.info), "latin1"), "Fno-nul");
    assert.equal(fs.readFileSync(path.join(root, m.paths.local), "latin1"), "Xodd\0Tok@x\0");
    assert.equal(fs.statSync(path.join(root, m.paths.remote)).size, 0);
  });

  test("8-bit addresses are stored as their UTF-8 bytes", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root).add({
      message: "x\n",
      sender: "山田@example.jp",
      recipients: [{ address: "ü@x.example" }],
    });
    assert.deepEqual(
      fs.readFileSync(path.join(root, m.paths.info)),
      Buffer.from("F山田@example.jp\0", "utf8"),
    );
  });

  test("mtimes and modes override per file", () => {
    const root = freshRoot();
    const m = QueueBuilder.create(root).add({
      message: "x\n",
      birthTime: 1000,
      mtimes: { remote: 2000 },
      modes: { mess: 0o600 },
    });
    assert.equal(fs.statSync(path.join(root, m.paths.info)).mtimeMs, 1000_000);
    assert.equal(fs.statSync(path.join(root, m.paths.mess)).mtimeMs, 1000_000);
    assert.equal(fs.statSync(path.join(root, m.paths.remote)).mtimeMs, 2000_000);
    assert.equal(mode(path.join(root, m.paths.mess)), 0o600);
  });
});

describe("QueueBuilder owners", () => {
  test("owners 'qmail' needs the qmail users; explicit owners are applied", () => {
    if (qmailOwners() === undefined) {
      assert.throws(
        () => QueueBuilder.create(freshRoot(), { owners: "qmail" }),
        /needs users qmailq, qmails, qmailr/,
      );
    }
    const root = freshRoot();
    const owners = {
      queue: { uid: 1201, gid: 1200 },
      send: { uid: 1202, gid: 1200 },
      remote: { uid: 1203, gid: 1200 },
    };
    const m = QueueBuilder.create(root, { owners }).add({ message: "x\n" });
    const mess = fs.statSync(path.join(root, m.paths.mess));
    const info = fs.statSync(path.join(root, m.paths.info));
    assert.deepEqual([mess.uid, mess.gid, info.uid, info.gid], [1201, 1200, 1202, 1200]);
    assert.equal(fs.statSync(path.join(root, "lock", "tcpto")).uid, 1203);
  });
});

describe("odd entries and buildQueue", () => {
  test("addEntry writes odd files, dirs and symlinks; removeEntry removes a split dir", () => {
    const root = freshRoot();
    const q = QueueBuilder.create(root, { split: 3 });
    q.addEntry("mess/1/123.bak", { kind: "file", content: "old" });
    q.addEntry("info/.hidden", { kind: "file" });
    q.addEntry("mess/lost+found", { kind: "dir" });
    q.addEntry("info/2/999", { kind: "symlink", target: "/etc/passwd" });
    q.removeEntry("local/2");
    q.addEntry("remote/3", { kind: "dir" });
    assert.equal(fs.readFileSync(path.join(root, "mess/1/123.bak"), "utf8"), "old");
    assert.ok(fs.lstatSync(path.join(root, "info/2/999")).isSymbolicLink());
    assert.deepEqual(fs.readdirSync(path.join(root, "local")).sort(), ["0", "1"]);
    assert.deepEqual(fs.readdirSync(path.join(root, "remote")).sort(), ["0", "1", "2", "3"]);
  });

  test("buildQueue builds an empty queue and one with messages", () => {
    const empty = buildQueue(freshRoot());
    assert.equal(empty.messages.length, 0);
    assert.equal(fs.readdirSync(path.join(empty.root, "mess")).length, 23);
    const built = buildQueue(freshRoot(), {
      split: 2,
      messages: [{ message: "a\n" }, { message: "b\n", state: "todo" }],
    });
    assert.equal(built.messages.length, 2);
    assert.equal(fs.readdirSync(path.join(built.root, "todo")).length, 1);
  });

  test("records() writes NUL-terminated records with no trailing empty record", () => {
    assert.deepEqual(records(["Fa@b", "Tc@d"]), Buffer.from("Fa@b\0Tc@d\0"));
    assert.deepEqual(records([]), Buffer.alloc(0));
  });
});
