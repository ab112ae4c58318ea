import { StringDecoder } from 'node:string_decoder';

/**
 * Reads the first line of `input` (a secret piped in: `printf '%s\n' "$SECRET" | latchkey … --client-secret-stdin`),
 * without its line ending. A secret given as an argument is visible to every user of the host in
 * /proc/PID/cmdline and `ps`, and stays in shell history; one read from standard input is neither.
 */
export async function readFirstLine(input: AsyncIterable<Buffer | string>): Promise<string> {
  const decoder = new StringDecoder('utf8');
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (text.includes('\n')) break;
  }
  text += decoder.end();
  const end = text.indexOf('\n');
  return (end === -1 ? text : text.slice(0, end)).replace(/\r$/, '');
}
