// A realistic queue of any size, deterministic by seed, for scale tests, the demo and the
// benchmarks: the incident qmHandle users meet most (a "failure notice" bounce storm to
// support@abcde.net) mixed with Japanese and UTF-8 newsletters, ordinary mail with local,
// virtual-domain and remote recipients, double bounces, bouncing and not-yet-preprocessed messages.

import { type MessageSpec, QueueBuilder, type RecipientSpec } from "./queue-builder.js";

export interface MixedQueueOptions {
  count: number;
  /** Same seed, same queue (ids aside: they are inode numbers). Default 1. */
  seed?: number;
  split?: number;
  bigTodo?: boolean;
  /** Unix seconds; birth times fall in the 7 days before it. Default: the clock. */
  now?: number;
  /** Called every 10,000 messages with the number written so far. */
  progress?: (written: number) => void;
}

/** What was written, to check readers against. */
export interface MixedQueueSummary {
  root: string;
  messages: number;
  preprocessed: number;
  todo: number;
  bouncing: number;
  withLocal: number;
  withRemote: number;
  /** "failure notice" from <> to support@abcde.net. */
  storm: number;
  bytes: number;
  oldestBirth: number;
}

/** The virtual domain the mix uses: local recipients user@vdom.example are stored as vp-user@vdom.example. */
export const MIXED_VIRTUAL_DOMAINS = { "vdom.example": "vp" };

// Japanese subjects as mailers send them (ISO-2022-JP, base64 encoded words), with the
// decoded text, so tests can match either form.
export const JAPANESE_SUBJECTS: ReadonlyArray<{ text: string; iso2022jp: string; utf8: string }> = [
  {
    text: "配信失敗のお知らせ",
    iso2022jp: "=?ISO-2022-JP?B?GyRCR1s/Ljw6R1QkTiQqQ04kaSQ7GyhC?=",
    utf8: "=?UTF-8?B?6YWN5L+h5aSx5pWX44Gu44GK55+l44KJ44Gb?=",
  },
  {
    text: "【重要】アカウント確認のお願い",
    iso2022jp: "=?ISO-2022-JP?B?GyRCIVo9RU1XIVslIiUrJSYlcyVIM05HJyROJCo0aiQkGyhC?=",
    utf8: "=?UTF-8?B?44CQ6YeN6KaB44CR44Ki44Kr44Km44Oz44OI56K66KqN44Gu44GK6aGY44GE?=",
  },
  {
    text: "ご注文ありがとうございます",
    iso2022jp: "=?ISO-2022-JP?B?GyRCJDRDbUo4JCIkaiQsJEgkJiQ0JDYkJCReJDkbKEI=?=",
    utf8: "=?UTF-8?B?44GU5rOo5paH44GC44KK44GM44Go44GG44GU44GW44GE44G+44GZ?=",
  },
  {
    text: "パスワード再設定のご案内",
    iso2022jp: "=?ISO-2022-JP?B?GyRCJVElOSVvITwlSTpGQF9EaiROJDQwRkZiGyhC?=",
    utf8: "=?UTF-8?B?44OR44K544Ov44O844OJ5YaN6Kit5a6a44Gu44GU5qGI5YaF?=",
  },
  {
    text: "請求書送付のお知らせ",
    iso2022jp: "=?ISO-2022-JP?B?GyRCQEE1YT1xQXdJVSROJCpDTiRpJDsbKEI=?=",
    utf8: "=?UTF-8?B?6KuL5rGC5pu46YCB5LuY44Gu44GK55+l44KJ44Gb?=",
  },
  {
    text: "セール開催中！最大50%OFF",
    iso2022jp: "=?ISO-2022-JP?B?GyRCJTshPCVrMys6RUNmISo6R0JnGyhCNTAlT0ZG?=",
    utf8: "=?UTF-8?B?44K744O844Or6ZaL5YKs5Lit77yB5pyA5aSnNTAlT0ZG?=",
  },
  {
    text: "会議日程の調整について",
    iso2022jp: "=?ISO-2022-JP?B?GyRCMnE1REZ8RHgkTkQ0QDAkSyREJCQkRhsoQg==?=",
    utf8: "=?UTF-8?B?5Lya6K2w5pel56iL44Gu6Kq/5pW044Gr44Gk44GE44Gm?=",
  },
  {
    text: "お問い合わせを受け付けました",
    iso2022jp: "=?ISO-2022-JP?B?GyRCJCpMZCQkOWckbyQ7JHI8dSQxSVUkMSReJDckPxsoQg==?=",
    utf8: "=?UTF-8?B?44GK5ZWP44GE5ZCI44KP44Gb44KS5Y+X44GR5LuY44GR44G+44GX44Gf?=",
  },
];

const HOST = "mx1.example.test";
const REMOTE_DOMAINS = ["good.example", "example.co.jp", "mail.example.jp", "other.example", "abcde.net"];
const WEEK = 7 * 24 * 3600;

/** mulberry32: small, fast, and the same sequence on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rfc2822(unix: number): string {
  // "Sat, 28 Nov 2026 04:11:12 +0000" from "Sat, 28 Nov 2026 04:11:12 GMT".
  return new Date(unix * 1000).toUTCString().replace("GMT", "+0000");
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

/** Writes `count` messages into a new queue at root and returns what it wrote. */
export function generateMixedQueue(root: string, opts: MixedQueueOptions): MixedQueueSummary {
  const rand = prng(opts.seed ?? 1);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const builder = QueueBuilder.create(root, {
    split: opts.split ?? 23,
    bigTodo: opts.bigTodo ?? false,
    now,
    virtualDomains: MIXED_VIRTUAL_DOMAINS,
  });
  const summary: MixedQueueSummary = {
    root: builder.root,
    messages: 0,
    preprocessed: 0,
    todo: 0,
    bouncing: 0,
    withLocal: 0,
    withRemote: 0,
    storm: 0,
    bytes: 0,
    oldestBirth: 0,
  };
  const filler = "x".repeat(76);
  for (let i = 0; i < opts.count; i++) {
    // Skewed towards recent mail, as a queue is: most messages are minutes to hours old.
    const age = Math.floor(rand() ** 3 * WEEK);
    const birth = now - age;
    const spec = mixedMessage(rand, i, birth, filler);
    builder.add(spec);
    const size = (spec.message as Buffer).length;
    summary.messages++;
    summary.bytes += size;
    if (spec.state === "todo") {
      summary.todo++;
    } else {
      summary.preprocessed++;
      const recipients = spec.recipients ?? [];
      if (recipients.some((r) => r.channel === "local")) summary.withLocal++;
      if (recipients.some((r) => r.channel === "remote")) summary.withRemote++;
      if (spec.bounce !== undefined) summary.bouncing++;
      if (summary.oldestBirth === 0 || birth < summary.oldestBirth) summary.oldestBirth = birth;
    }
    if (spec.sender === "" && spec.recipients?.[0]?.address === "support@abcde.net") summary.storm++;
    if (opts.progress && (i + 1) % 10000 === 0) opts.progress(i + 1);
  }
  builder.close();
  return summary;
}

function mixedMessage(rand: () => number, i: number, birth: number, filler: string): MessageSpec {
  const date = rfc2822(birth);
  const kind = rand();
  const jp = pick(rand, JAPANESE_SUBJECTS);
  let sender: string;
  let from: string;
  let subject: string;
  let clientIp: string;
  let recipients: RecipientSpec[];
  let bodyLines = 3 + Math.floor(rand() * 40);
  let extra = "";
  if (kind < 0.3) {
    // The bounce storm: forged senders at abcde.net, bounces coming back from a few hosts.
    sender = "";
    from = `MAILER-DAEMON@mx${Math.floor(rand() * 5)}.bounce.example`;
    subject = "failure notice";
    clientIp = `198.51.100.${10 + Math.floor(rand() * 5)}`;
    recipients = [{ address: "support@abcde.net", channel: "remote" }];
    extra =
      "Hi. This is the qmail-send program at bounce.example.\n" +
      "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n" +
      `<nobody${i % 997}@example.co.jp>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n` +
      "--- Below this line is a copy of the message.\n\n" +
      `From: support@abcde.net\nSubject: ${jp.iso2022jp}\n\n`;
  } else if (kind < 0.55) {
    const shop = Math.floor(rand() * 20);
    sender = `noreply@shop${shop}.example.co.jp`;
    from = `=?ISO-2022-JP?B?GyRCRSk5fBsoQg==?= <${sender}>`;
    // One in four folded over two lines, as long subjects are.
    subject = rand() < 0.25 ? `${jp.iso2022jp}\n ${pick(rand, JAPANESE_SUBJECTS).iso2022jp}` : jp.iso2022jp;
    clientIp = `203.0.113.${Math.floor(rand() * 250) + 1}`;
    recipients = remoteRecipients(rand, 1 + Math.floor(rand() * 3), i);
  } else if (kind < 0.65) {
    sender = `info@service${Math.floor(rand() * 5)}.example`;
    from = sender;
    subject = jp.utf8;
    clientIp = `192.0.2.${Math.floor(rand() * 250) + 1}`;
    recipients = remoteRecipients(rand, 1, i);
  } else if (kind < 0.87) {
    sender = `user${Math.floor(rand() * 200)}@corp.example`;
    from = `User <${sender}>`;
    subject = `Re: project status ${i % 50}`;
    clientIp = `10.0.${Math.floor(rand() * 4)}.${Math.floor(rand() * 250) + 1}`;
    recipients = [
      { address: `staff${i % 30}@${HOST}`, channel: "local", done: rand() < 0.3 },
      ...(rand() < 0.5
        ? [
            {
              address: `user${i % 40}@vdom.example`,
              stored: `vp-user${i % 40}@vdom.example`,
              channel: "local" as const,
            },
          ]
        : []),
      ...remoteRecipients(rand, Math.floor(rand() * 2), i),
    ];
  } else if (kind < 0.9) {
    sender = "#@[]";
    from = `MAILER-DAEMON@${HOST}`;
    subject = "failure notice";
    clientIp = "";
    recipients = [{ address: `postmaster@${HOST}`, channel: "local" }];
  } else {
    sender = `promo${Math.floor(rand() * 1000)}@spam${Math.floor(rand() * 30)}.example`;
    from = sender;
    subject = `=?UTF-8?Q?Win_a_prize_=E2=80=94_${i % 100}?=`;
    clientIp = `203.0.113.${Math.floor(rand() * 250) + 1}`;
    recipients = remoteRecipients(rand, 1 + Math.floor(rand() * 5), i);
  }
  if (rand() < 0.01) bodyLines = 500 + Math.floor(rand() * 300);

  const received = clientIp
    ? `Received: (qmail ${1000 + (i % 30000)} invoked from network); ${date}\n` +
      `Received: from unknown (HELO client${i % 100}.example) (${clientIp})\n  by ${HOST} with SMTP; ${date}\n`
    : `Received: (qmail ${1000 + (i % 30000)} invoked by uid 0); ${date}\n`;
  const to = recipients.map((r) => r.address).join(", ");
  const head =
    `${received}Date: ${date}\nMessage-ID: <${birth}.${i}.qmail@${HOST}>\nFrom: ${from}\nTo: ${to}\n` +
    `Subject: ${subject}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n`;
  const body = `${extra}${`${filler}\n`.repeat(bodyLines)}`;
  const message = Buffer.from(head + body, "utf8");

  // 5% still in todo/ (qmail-send has not preprocessed them yet); 8% of the rest bouncing.
  if (rand() < 0.05) {
    return { message, sender, recipients, birthTime: birth, state: "todo" };
  }
  const bounce =
    rand() < 0.08
      ? `<${recipients[0]?.address ?? "x"}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n`
      : undefined;
  const spec: MessageSpec = { message, sender, recipients, birthTime: birth, state: "preprocessed" };
  if (bounce !== undefined) spec.bounce = bounce;
  return spec;
}

function remoteRecipients(rand: () => number, n: number, i: number): RecipientSpec[] {
  const list: RecipientSpec[] = [];
  for (let k = 0; k < n; k++) {
    list.push({ address: `r${(i + k) % 500}@${pick(rand, REMOTE_DOMAINS)}`, channel: "remote" });
  }
  return list;
}
