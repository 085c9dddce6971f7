// The fields of a header block that a scan summarizes, found in the reader thread: walking a
// block's lines and naming its fields was ~10% of the JavaScript thread's time in a listing, and
// most of the slow start of a fresh process (a character loop runs interpreted until V8 has
// compiled it). This is headers.ts's eachField and wantedNameAt over the block's bytes, which
// are its latin1 view's characters one for one; the tests compare the two on every kind of
// block (head-fields.test.ts). What the fields say stays in TypeScript.
#include "head_fields.h"

#include <string.h>

// SUMMARY_FIELDS and "received" in headers.ts, in its order.
static const char *const WANTED[] = {"from", "to", "cc", "subject", "date", "message-id", "received"};
#define WANTED_COUNT (sizeof WANTED / sizeof WANTED[0])
#define RECEIVED (WANTED_COUNT - 1)

// What String.prototype.trimEnd takes off a latin1 string: space, TAB, LF, VT, FF, CR and NBSP.
static int trimmed_off(unsigned char c) { return c == 0x20 || (c >= 0x09 && c <= 0x0d) || c == 0xa0; }

// The WANTED index of the name from start to colon (trailing blanks off, any ASCII case), or -1.
static int wanted_name(const unsigned char *block, size_t start, size_t colon) {
  size_t end = colon;
  while (end > start && trimmed_off(block[end - 1])) end--;
  for (size_t w = 0; w < WANTED_COUNT; w++) {
    const char *name = WANTED[w];
    size_t n = strlen(name);
    if (n != end - start) continue;
    size_t i = 0;
    while (i < n) {
      unsigned char c = block[start + i];
      if ((c >= 'A' && c <= 'Z' ? c + 0x20 : c) != (unsigned char)name[i]) break;
      i++;
    }
    if (i == n) return (int)w;
  }
  return -1;
}

static void field(const unsigned char *block, size_t start, long colon, size_t end, int32_t *out) {
  if (colon < 0) return;
  int w = wanted_name(block, start, (size_t)colon);
  if (w < 0) return;
  if ((size_t)w == RECEIVED) {
    int32_t k = out[13]++;
    if (k < HEAD_FIELDS_RECEIVED) {
      out[14 + 2 * k] = (int32_t)colon;
      out[15 + 2 * k] = (int32_t)end;
    }
  } else if (out[1 + 2 * w] == -1) {
    out[1 + 2 * w] = (int32_t)colon;
    out[2 + 2 * w] = (int32_t)end;
  }
}

void qmfleet_head_fields(const unsigned char *block, size_t length, int32_t *out) {
  int plain = 1;
  for (size_t i = 0; i < length; i++) plain &= block[i] < 0x80 && block[i] != 0x1b;
  out[0] = plain;
  for (int k = 1; k < 13; k++) out[k] = -1;
  out[13] = 0;
  for (int k = 14; k < HEAD_FIELDS_INTS; k++) out[k] = -1;
  // A field is a line that starts with no blank, and the lines after it that do (its folds); a
  // line with no colon before its end is one too, with no name. An empty line ends the block.
  long start = -1, colon = -1;
  size_t end = 0, pos = 0;
  while (pos < length) {
    const unsigned char *newline = memchr(block + pos, '\n', length - pos);
    size_t line_end = newline ? (size_t)(newline - block) : length;
    size_t content_end = line_end > pos && block[line_end - 1] == '\r' ? line_end - 1 : line_end;
    if (content_end == pos) break;
    unsigned char first = block[pos];
    if ((first == ' ' || first == '\t') && start != -1) {
      end = content_end;
    } else {
      if (start != -1) field(block, (size_t)start, colon, end, out);
      const unsigned char *at = memchr(block + pos, ':', content_end - pos);
      start = (long)pos;
      colon = at ? at - block : -1;
      end = content_end;
    }
    pos = line_end + 1;
  }
  if (start != -1) field(block, (size_t)start, colon, end, out);
}
