/** Asking before a command does something that cannot be taken back (deleting, sending again). */
import { DiscueError } from '../protocol/errors.js';

/**
 * Asks `question` on the terminal (stdin and stderr). "y" or "yes" goes on;
 * "n" or no answer (Ctrl-D) stops with ABORTED and `refused` as the message;
 * Ctrl-C with INTERRUPTED.
 */
export async function confirm(question: string, refused: string): Promise<void> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // In raw mode Ctrl-C reaches readline, not the process: it means interrupted (130).
  const interrupted = new AbortController();
  rl.once('SIGINT', () => interrupted.abort());
  // Ctrl-D ends the input without an answer, which is no.
  const ended = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
  let answer: string;
  try {
    answer = await Promise.race([rl.question(question, { signal: interrupted.signal }), ended]);
  } catch (err) {
    if (interrupted.signal.aborted) throw new DiscueError('INTERRUPTED', `interrupted: ${refused.replace(/ \(--yes.*$/, '')}`);
    throw err;
  } finally {
    rl.close();
  }
  if (!/^y(es)?$/i.test(answer.trim())) throw new DiscueError('ABORTED', refused);
}
