/**
 * Asking for a password on a terminal: the prompt goes to stderr (stdout stays for the command's
 * result), the typed characters are not echoed (the terminal is in raw mode while reading), and
 * the password is asked twice so that a typo does not become the password.
 */
import type { ReadStream } from 'node:tty'

/** A prompt the user ended on purpose (Ctrl-C, or Ctrl-D on an empty line): nothing is changed. */
export class PromptAborted extends Error {
  /** 130 is the shell's status for a command ended by Ctrl-C (128 + SIGINT). */
  readonly exitCode = 130
  constructor () { super('cancelled; nothing was changed') }
}

/** Reads one line from a terminal without echoing it. Backspace edits; Ctrl-C and Ctrl-D (on an empty line) abort. */
export async function readHidden (input: ReadStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  // Raw mode (no echo) before the prompt: a user who types at once must not see the first keys echoed.
  const wasRaw = input.isRaw
  input.setRawMode(true)
  output.write(prompt)
  input.setEncoding('utf8')
  input.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = ''
      const finish = (err: Error | undefined): void => {
        input.off('data', onData)
        input.off('end', onEnd)
        output.write('\n')
        if (err === undefined) resolve(typed)
        else reject(err)
      }
      const onEnd = (): void => { finish(new PromptAborted()) }
      const onData = (chunk: string): void => {
        // A function or arrow key sends an escape sequence in one chunk: not part of a password.
        if (chunk.startsWith('\u001b')) return
        // A paste arrives as one chunk: take it character by character.
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') { finish(undefined); return }
          if (ch === '\u0003') { finish(new PromptAborted()); return }
          if (ch === '\u0004') {
            if (typed === '') { finish(new PromptAborted()); return }
            continue
          }
          if (ch === '\u007f' || ch === '\b') { typed = [...typed].slice(0, -1).join(''); continue }
          if (ch < ' ') continue // other control characters (arrow keys' escape sequences start with one)
          typed += ch
        }
      }
      input.on('data', onData)
      input.on('end', onEnd)
    })
  } finally {
    input.setRawMode(wasRaw)
    input.pause()
  }
}

/** Asks for a new password twice; a mismatch is refused (nothing is changed). */
export async function readPasswordTwice (input: ReadStream, output: NodeJS.WritableStream): Promise<string> {
  const first = await readHidden(input, output, 'Password: ')
  const second = await readHidden(input, output, 'Repeat password: ')
  if (first !== second) throw new Error('the two passwords do not match; nothing was changed')
  return first
}
