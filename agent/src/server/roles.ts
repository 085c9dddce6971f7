// Who may do what. The TLS layer has already proved that the client certificate was signed by the
// fleet CA; this module decides what that certificate may do:
//
//   read   GetAgentInfo, GetStats, ListMessages, Summarize, ReadMessage, CheckQueue, ListQuarantine
//   admin  everything read may, plus PreviewPurge, ExecutePurge, RetrySooner, SendNow, RestoreQuarantine
//
// The role is the certificate's OU ("read" or "admin"), unless the agent was given an explicit
// mapping for the certificate's CN (`--role CN=ROLE`), which wins: sites whose PKI fixes the OU can
// still grant roles. A certificate with neither gets PERMISSION_DENIED: being signed by the CA is
// not enough to read mail queues.

import type { PeerCertificate } from "node:tls";

export type Role = "read" | "admin";

const RANK: Record<Role, number> = { read: 1, admin: 2 };

export function isRole(value: string): value is Role {
  return value === "read" || value === "admin";
}

/** True when a caller holding `granted` may call an RPC that needs `needed`. */
export function roleAllows(granted: Role, needed: Role): boolean {
  return RANK[granted] >= RANK[needed];
}

/** CN -> role overrides given on the command line. */
export type RoleMap = ReadonlyMap<string, Role>;

/** Parses one `CN=ROLE` mapping; the CN may itself contain "=" (the last one separates). */
export function parseRoleMapping(spec: string): [string, Role] {
  const at = spec.lastIndexOf("=");
  const cn = spec.slice(0, at);
  const role = spec.slice(at + 1);
  if (at <= 0 || !isRole(role)) {
    throw new Error(`invalid role mapping "${spec}": expected CN=read or CN=admin`);
  }
  return [cn, role];
}

/** How the caller is named in errors and logs. */
export function describePeer(cert: PeerCertificate): string {
  const subject = cert.subject ?? {};
  const parts = (["CN", "OU", "O"] as const).flatMap((k) => values(subject[k]).map((v) => `${k}=${v}`));
  return parts.length > 0 ? parts.join(",") : `serial ${cert.serialNumber}`;
}

/** The certificate's (first) CN: who acts, in the audit log. */
export function commonName(cert: PeerCertificate): string | undefined {
  return values(cert.subject?.CN)[0];
}

// Node gives a repeated RDN (two OUs) as an array.
function values(field: string | string[] | undefined): string[] {
  if (field === undefined) {
    return [];
  }
  return Array.isArray(field) ? field : [field];
}

/**
 * The role a verified client certificate carries, or undefined. Several OUs naming roles grant
 * the highest: the CA that signed them said so.
 */
export function roleOfCertificate(cert: PeerCertificate, roleMap: RoleMap): Role | undefined {
  for (const cn of values(cert.subject?.CN)) {
    const mapped = roleMap.get(cn);
    if (mapped) {
      return mapped;
    }
  }
  let best: Role | undefined;
  for (const ou of values(cert.subject?.OU)) {
    if (isRole(ou) && (best === undefined || RANK[ou] > RANK[best])) {
      best = ou;
    }
  }
  return best;
}
