import { UsageError, type Io, type Stdin, type Values } from './output.js';

/** The first line of a pipe or file (without its line ending), or '' when it is empty. */
function readFirstLine(stdin: Stdin): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (line: string) => {
      stdin.off('data', onData).off('end', onEnd).off('error', reject);
      // A paused standard input no longer keeps the process alive; the rest of it is not read.
      stdin.pause();
      resolve(line.replace(/\r$/, ''));
    };
    const onData = (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) finish(text.slice(0, end));
    };
    const onEnd = () => finish(text);
    stdin.setEncoding('utf8');
    stdin.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

/**
 * One line typed at a terminal, not echoed: raw mode hands over each key as it is typed, so nothing appears on the
 * screen (or in a screen recording). Enter ends the line, Backspace deletes, Ctrl-C cancels.
 */
function readHiddenLine(stdin: Stdin, setRawMode: (isRaw: boolean) => unknown, io: Io, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (outcome: () => void) => {
      stdin.off('data', onData);
      setRawMode(false);
      stdin.pause();
      io.stderr('');
      outcome();
    };
    const onData = (chunk: string) => {
      for (const key of chunk) {
        if (key === '\r' || key === '\n' || (key === '\u0004' && typed === '')) return finish(() => resolve(typed));
        if (key === '\u0003') return finish(() => reject(new UsageError('cancelled')));
        if (key === '\u007f' || key === '\b') typed = [...typed].slice(0, -1).join('');
        else typed += key;
      }
    };
    // Echo goes off before the prompt appears: whatever is typed after it stays hidden.
    setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
    io.stderr(prompt);
  });
}

/**
 * A secret given as `--NAME VALUE` or, with `--NAME-stdin`, as the first line of standard input: an argument is
 * visible to every user of the host (/proc/PID/cmdline, `ps`) and stays in shell history; standard input is not.
 * At a terminal the line is typed without echo. Giving both is a usage error.
 */
export async function secretOption(values: Values, name: string, io: Io): Promise<string | undefined> {
  const fromStdin = values[`${name}-stdin`] === true;
  if (fromStdin && values[name] !== undefined) throw new UsageError(`--${name} and --${name}-stdin exclude each other`);
  if (!fromStdin) return values[name] as string | undefined;
  const { stdin } = io;
  if (!stdin) throw new UsageError(`--${name}-stdin: this command has no standard input to read`);
  const setRawMode = stdin.isTTY ? stdin.setRawMode?.bind(stdin) : undefined;
  const line = setRawMode ? await readHiddenLine(stdin, setRawMode, io, `${name} (not shown), then Enter:`) : await readFirstLine(stdin);
  if (line === '') throw new UsageError(`--${name}-stdin: standard input held no ${name}`);
  return line;
}
