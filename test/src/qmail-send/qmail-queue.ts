// A small but real qmail-queue for tests (qmail-queue.c's protocol and file order): the
// message on fd 0, the envelope on fd 1 (F<sender>\0, T<recipient>\0 ..., then \0).
// It creates pid/<pid>, takes its inode number as the id, links it to mess/<id % split>/<id>,
// writes its own Received line and the message, writes intd/<id> (u, p, F, T records),
// links intd -> todo (the commit) and pulls lock/trigger. Exit codes are qmail-queue's.
//
// Usage: qmail-queue <queue root>   (the real one has its root compiled in; see qmail-queue-script.ts)

import * as fs from "node:fs";
import * as path from "node:path";

const root = process.argv[2];
if (!root) process.exit(61);

function die(code: number): never {
  process.exit(code);
}

function dateField(d: Date): string {
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} -0000`;
}

let message: Buffer;
let envelope: Buffer;
try {
  message = fs.readFileSync(0);
  envelope = fs.readFileSync(1);
} catch {
  die(54);
}

// F<sender>\0 (T<recipient>\0)* \0
const fields: string[] = [];
let start = 0;
for (let nul = envelope.indexOf(0); nul >= 0; start = nul + 1, nul = envelope.indexOf(0, start)) {
  fields.push(envelope.subarray(start, nul).toString("latin1"));
  if (nul === start) break;
}
const sender = fields[0];
const recipients = fields.slice(1, -1);
if (sender === undefined || !sender.startsWith("F") || fields.at(-1) !== "") die(91);
if (recipients.length === 0 || recipients.some((r) => !r.startsWith("T"))) die(91);

const split = fs.readdirSync(path.join(root, "mess")).filter((n) => /^\d+$/.test(n)).length;
if (split === 0) die(62);
let bigTodo = false;
try {
  bigTodo = fs.statSync(path.join(root, "todo", "0")).isDirectory();
} catch {
  bigTodo = false;
}

const pidfn = path.join(root, "pid", String(process.pid));
let fd: number;
try {
  fd = fs.openSync(pidfn, "wx", 0o644);
} catch {
  die(63);
}
const id = fs.fstatSync(fd, { bigint: true }).ino;
const n = String(id % BigInt(split));
const rel = (dir: string, splitted: boolean) =>
  splitted ? path.join(dir, n, String(id)) : path.join(dir, String(id));
try {
  fs.linkSync(pidfn, path.join(root, rel("mess", true)));
} catch {
  die(64);
}
fs.unlinkSync(pidfn);

const uid = process.getuid?.() ?? 0;
fs.writeSync(fd, `Received: (qmail ${process.pid} invoked by uid ${uid}); ${dateField(new Date())}\n`);
fs.writeSync(fd, message);
fs.fsyncSync(fd);
fs.closeSync(fd);

const intd = path.join(root, rel("intd", bigTodo));
try {
  const ifd = fs.openSync(intd, "wx", 0o644);
  fs.writeSync(
    ifd,
    Buffer.from(`u${uid}\0p${process.pid}\0${sender}\0${recipients.map((r) => `${r}\0`).join("")}`, "latin1"),
  );
  fs.fsyncSync(ifd);
  fs.closeSync(ifd);
} catch {
  die(65);
}
try {
  fs.linkSync(intd, path.join(root, rel("todo", bigTodo)));
} catch {
  die(66);
}

// triggerpull(): a byte into the FIFO, if qmail-send is listening.
try {
  const trigger = path.join(root, "lock", "trigger");
  if (fs.statSync(trigger).isFIFO()) {
    const tfd = fs.openSync(trigger, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fs.writeSync(tfd, "\0");
    fs.closeSync(tfd);
  }
} catch {
  // nobody listening: qmail-send scans todo/ on its own schedule
}
process.exit(0);
