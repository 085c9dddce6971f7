// --listen HOST:PORT, and whether HOST is loopback (the only place plaintext is allowed).

import { isIP } from "node:net";

export interface ListenAddress {
  host: string;
  port: number;
}

/** "localhost:7001", "127.0.0.1:0", "[::1]:7001", "0.0.0.0:7001". Port 0 picks a free port. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new Error(`invalid listen address "${text}": expected HOST:PORT, e.g. 0.0.0.0:7001 or [::1]:7001`);
  }
  if (match?.[1] !== undefined && isIP(host) !== 6) {
    throw new Error(`invalid listen address "${text}": only an IPv6 address goes in brackets`);
  }
  return { host, port };
}

/** The address as grpc-js binds it (IPv6 in brackets). */
export function formatListenAddress({ host, port }: ListenAddress): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") {
    return true;
  }
  // All of 127.0.0.0/8 is loopback.
  return isIP(host) === 4 && host.startsWith("127.");
}
