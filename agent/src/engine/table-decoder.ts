// iconv-lite's decoding of a double-byte charset (EUC-JP, Shift_JIS), remembered character by
// character. iconv-lite walks a trie for every byte and allocates a zeroed buffer, a byte array
// and a string a call: ~2 µs for a 15-character subject, most of what a listing of Japanese
// mail spent decoding. Here each byte and byte pair is asked of iconv-lite once, the first time
// it is seen, and looked up in a table after that (~0.2 µs a subject).
//
// The output is iconv-lite's by construction: its decoder resets after every complete
// character, so text made of complete characters decodes as the concatenation of their
// decodings. Whatever is not a complete character mapped to one UTF-16 unit (a byte or pair
// iconv-lite replaces with U+FFFD, where it then re-reads the second byte as a new character; a
// three-byte sequence such as EUC-JP's JIS X 0212; a lead byte at the end; a character outside
// the BMP) sends the whole text to iconv-lite itself.
import { Buffer } from "node:buffer";
import iconv from "iconv-lite";

/** Table values below zero: not learnt yet, a lead byte, or something only iconv-lite may decode. */
const UNKNOWN = -1;
const LEAD = -2;
const ELSEWHERE = -3;

const REPLACEMENT = 0xfffd;

export class TableDecoder {
  /** Per byte: its character, LEAD, ELSEWHERE or UNKNOWN. */
  private readonly single = new Int32Array(256).fill(UNKNOWN);
  /** Per lead byte, per second byte: the pair's character, ELSEWHERE or UNKNOWN. */
  private readonly pairs: (Int32Array | undefined)[] = [];

  constructor(private readonly charset: string) {}

  decode(bytes: Buffer): string {
    // Two bytes of UTF-16 per input byte at most: every unit kept is one or two input bytes.
    const out = Buffer.allocUnsafe(bytes.length * 2);
    let n = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      let code = this.single[b] as number;
      if (code === UNKNOWN) code = this.learnSingle(b);
      if (code === LEAD) {
        const second = bytes[++i];
        code = second === undefined ? ELSEWHERE : this.pairOf(b, second);
      }
      if (code === ELSEWHERE) return iconv.decode(bytes, this.charset);
      out[n++] = code & 0xff;
      out[n++] = code >> 8;
    }
    return out.toString("utf16le", 0, n);
  }

  private pairOf(lead: number, second: number): number {
    let row = this.pairs[lead];
    if (!row) {
      row = new Int32Array(256).fill(UNKNOWN);
      this.pairs[lead] = row;
    }
    const code = row[second] as number;
    if (code !== UNKNOWN) return code;
    const learnt = this.asked([lead, second]);
    row[second] = learnt === LEAD ? ELSEWHERE : learnt;
    return row[second] as number;
  }

  private learnSingle(b: number): number {
    this.single[b] = this.asked([b]);
    return this.single[b] as number;
  }

  /** What iconv-lite makes of `bytes` alone: one character, LEAD (it waits for more) or ELSEWHERE. */
  private asked(bytes: number[]): number {
    const decoder = iconv.getDecoder(this.charset);
    const text = decoder.write(Buffer.from(bytes));
    if (text === "") return LEAD;
    const code = text.charCodeAt(0);
    return text.length === 1 && code !== REPLACEMENT ? code : ELSEWHERE;
  }
}
