/**
 * Runs a command in a real pseudo-terminal (Python's `pty` module), as a person at a terminal
 * would: answers each expected prompt with the given keys, and returns everything the terminal
 * showed — echo included, so a test can tell whether typed characters were echoed.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'

export interface PtyStep {
  /** Text to wait for in the terminal's output (after the previous step's). */
  expect: string
  /** Keys to type once it appears ("\r" is Enter, "\u0003" Ctrl-C); or a signal to send to the command. */
  send?: string
  signal?: 'SIGINT' | 'SIGTERM'
}

export interface PtyResult {
  /** What the terminal showed (stdout and stderr of the command, and the terminal's echo). */
  output: string
  /** Exit status; 128 + n for a signal. */
  code: number
  /** The step whose text never appeared within the timeout, if any. */
  timedOutAt?: string
}

const DRIVER = String.raw`
import json, os, pty, select, signal, sys, time
argv, steps, env, cwd, timeout = json.loads(sys.stdin.read())
pid, fd = pty.fork()
if pid == 0:
    os.chdir(cwd)
    os.execvpe(argv[0], argv, env)
out = b''
pos = 0
missed = None
def read_some(deadline):
    global out
    left = deadline - time.time()
    if left <= 0: return False
    r, _, _ = select.select([fd], [], [], left)
    if not r: return False
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return None
    if not chunk: return None
    out += chunk
    return True
for step in steps:
    token = step['expect'].encode()
    deadline = time.time() + timeout
    found = -1
    while True:
        found = out.find(token, pos)
        if found >= 0: break
        got = read_some(deadline)
        if not got: break
    if found < 0:
        missed = step['expect']
        break
    pos = found + len(token)
    if step.get('send') is not None: os.write(fd, step['send'].encode())
    if step.get('signal') is not None: os.kill(pid, getattr(signal, step['signal']))
if missed is not None:
    os.kill(pid, signal.SIGKILL)
deadline = time.time() + timeout
while read_some(deadline): pass
_, status = os.waitpid(pid, 0)
print(json.dumps({'output': out.decode('utf8', 'replace'), 'code': os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status), 'timedOutAt': missed}))
`

export async function runInPty (argv: string[], steps: PtyStep[], opts: { cwd: string, env?: NodeJS.ProcessEnv, timeoutSeconds?: number }): Promise<PtyResult> {
  const child = spawn('/usr/bin/python3', ['-c', DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(JSON.stringify([argv, steps, { ...process.env, ...opts.env }, opts.cwd, opts.timeoutSeconds ?? 60]))
  const [code] = await once(child, 'close') as [number | null]
  if (code !== 0) throw new Error(`pty driver failed (${code}): ${stderr}`)
  const result = JSON.parse(stdout) as PtyResult & { timedOutAt: string | null }
  return { output: result.output, code: result.code, ...(result.timedOutAt !== null ? { timedOutAt: result.timedOutAt } : {}) }
}
