// head_digest.c: SHA-256 of a message's header block, for its fingerprint (fingerprint.ts).
#ifndef QMFLEET_HEAD_DIGEST_H
#define QMFLEET_HEAD_DIGEST_H
#include <stddef.h>

// Bytes of the digest kept: fingerprint.ts's 32 hex digits.
#define HEAD_DIGEST 16

// 0 with the first HEAD_DIGEST bytes of SHA-256(data) in out, or -1 when there is none to give
// (turned off, OpenSSL's functions not in this process, or one failed): fingerprint.ts then
// hashes in JavaScript. Any thread.
int qmfleet_head_digest(const char *data, size_t length, unsigned char *out);

// Turns the native digests on or off (tests compare them with JavaScript's); returns whether they were on.
int qmfleet_digest_enable(int on);
#endif
