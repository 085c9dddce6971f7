// head_fields.c: where a header block has the fields a scan summarizes (headers.ts
// summarizeHeaders), found in the reader thread.
#ifndef QMFLEET_HEAD_FIELDS_H
#define QMFLEET_HEAD_FIELDS_H
#include <stddef.h>
#include <stdint.h>

// The numbers given per header block, all offsets into the block (headers.ts HEAD_FIELD_INTS
// and its layout say the same):
//   [0]       1 when the block is plain ASCII (no 8-bit byte, no ESC), else 0
//   [1..12]   colon and end of the first From, To, Cc, Subject, Date, Message-ID field (-1 -1: none)
//   [13]      how many Received fields there are
//   [14..29]  colon and end of the first HEAD_FIELDS_RECEIVED of them, in block order
// A field's colon is the offset of the colon ending its name, its end that of its last line's
// end, the line ending excluded.
#define HEAD_FIELDS_RECEIVED 8
#define HEAD_FIELDS_INTS (14 + 2 * HEAD_FIELDS_RECEIVED)

void qmfleet_head_fields(const unsigned char *block, size_t length, int32_t *out);
#endif
