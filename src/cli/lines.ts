/**
 * NDJSON on stdin, for `publish` and `import`: what arrives is stored as
 * sent or refused, never silently altered, and never buffered without bound.
 */
import { DiscueError } from '../protocol/errors.js';
import { LineDecoder, MAX_FRAME_BYTES } from '../protocol/frames.js';
import type { InvalidUtf8Line } from '../protocol/frames.js';

/**
 * Lines of a byte stream, each decoded strictly: a line that is not UTF-8
 * comes back as InvalidUtf8Line rather than with U+FFFD in place of its bytes
 * (readline would substitute silently, and the daemon store the substitute).
 */
export async function* strictLines(input: NodeJS.ReadableStream, tooLong: () => Error): AsyncGenerator<string | InvalidUtf8Line> {
  // Bounded by what one request may carry: an unbounded line (a binary file
  // piped in by mistake, a stream without newlines) was buffered whole, to
  // gigabytes, and ended as INTERNAL "Cannot create a string longer than ...".
  const decoder = new LineDecoder(MAX_FRAME_BYTES);
  const push = (chunk: Buffer) => {
    try {
      return decoder.pushStrict(chunk).map(withoutCr);
    } catch (err) {
      throw err instanceof DiscueError && err.code === 'FRAME_TOO_LARGE' ? tooLong() : err;
    }
  };
  for await (const chunk of input as AsyncIterable<Buffer>) yield* push(chunk);
  // The last line may have no newline.
  if (decoder.buffered > 0) yield* push(Buffer.from('\n'));
}

function withoutCr(line: string | InvalidUtf8Line): string | InvalidUtf8Line {
  return typeof line === 'string' && line.endsWith('\r') ? line.slice(0, -1) : line;
}
