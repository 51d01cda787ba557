/**
 * The rule files of `rules.dir` as the console's editor may touch them: only regular `.yaml`/`.yml`
 * files directly in the directory, named without any path (no `/`, `\`, `..` prefix, NUL,
 * leading dot), never through a symbolic link, and written atomically — a temporary file in the
 * same directory, fsync, then rename (or a hard link for a new file, so that a file created
 * meanwhile is never overwritten) — so that the rules component's watcher never reads half a file.
 * Codec files (JavaScript) are code the daemon runs: they are not editable here (docs/console.md).
 */
import { createHash, randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { link, lstat, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'

/** A rule file the console edits is at most this big (UTF-8 bytes). Rule files are a few KiB. */
export const MAX_RULE_FILE_BYTES = 256 * 1024
/** Names of new files; lowercase so that two names never differ only in case. */
export const NEW_FILE_NAME = /^[a-z0-9][a-z0-9._-]*\.ya?ml$/
/** Names of existing files the editor opens (the daemon loads any `*.yaml`/`*.yml`). */
const EXISTING_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$/i
const MAX_NAME_LENGTH = 100
/** What the rules component loads: the same test, so that the list shows what runs. */
const LOADED = /\.ya?ml$/i

export type RuleFileRefusal =
  | { code: 'LB_ERR_RULE_EDIT_PATH', status: 400 | 403, message: string }
  | { code: 'LB_ERR_RULE_EDIT_NOT_FOUND', status: 404, message: string }
  | { code: 'LB_ERR_RULE_EDIT_CONFLICT', status: 409, message: string, etag: string | null }
  | { code: 'LB_ERR_RULE_EDIT_TOO_LARGE', status: 413, message: string }

export class RuleFileError extends Error {
  constructor (readonly refusal: RuleFileRefusal) { super(refusal.message) }
}

export interface RuleFileEntry {
  file: string
  size: number
  /** Whether the console may open and save it; `reason` says why not. */
  editable: boolean
  reason?: string
}

export interface RuleFileContent { file: string, content: string, etag: string, size: number }

/** The version tag of a file's content: its SHA-256, hex. */
export function etagOf (content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex')
}

function refuse (refusal: RuleFileRefusal): never { throw new RuleFileError(refusal) }

/**
 * Checks a file name as the client sent it; `creating` asks for the stricter rule of new files.
 * Only a bare name passes: anything that could be a path is refused before the file system sees it.
 */
export function checkName (name: unknown, creating: boolean): string {
  if (typeof name !== 'string' || name === '') refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 400, message: '"file" must be the name of a rule file' })
  const shown = JSON.stringify(name.slice(0, MAX_NAME_LENGTH))
  if (name.length > MAX_NAME_LENGTH) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 400, message: `file name longer than ${MAX_NAME_LENGTH} characters` })
  if (name.includes('\0') || name.includes('/') || name.includes('\\')) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 400, message: `${shown} is not a file name in the rules directory (no paths)` })
  if (!LOADED.test(name)) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 400, message: `${shown}: only rule files (.yaml, .yml) can be edited here; codecs and other files cannot` })
  const pattern = creating ? NEW_FILE_NAME : EXISTING_FILE_NAME
  if (!pattern.test(name)) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 400, message: `${shown}: a rule file name is lowercase letters, digits, ".", "_" and "-", starting with a letter or digit, ending in .yaml or .yml` })
  return name
}

/** Regular file, directly in the directory, not a link: what may be opened or replaced. */
function checkKind (name: string, st: { isFile: () => boolean, isSymbolicLink: () => boolean }): void {
  if (st.isSymbolicLink()) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 403, message: `${name} is a symbolic link: edit the file it points to where it lives` })
  if (!st.isFile()) refuse({ code: 'LB_ERR_RULE_EDIT_PATH', status: 403, message: `${name} is not a regular file` })
}

export class RuleFiles {
  /** Saves one at a time, so that two saves of one file cannot both pass the version check. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor (readonly dir: string) {}

  async list (): Promise<RuleFileEntry[]> {
    let names: string[]
    try {
      names = (await readdir(this.dir)).filter(n => LOADED.test(n)).sort()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const out: RuleFileEntry[] = []
    for (const file of names) {
      const st = await lstat(join(this.dir, file)).catch(() => undefined)
      if (st === undefined) continue
      let reason: string | undefined
      try {
        checkName(file, false)
        checkKind(file, st)
        if (st.size > MAX_RULE_FILE_BYTES) reason = `larger than ${MAX_RULE_FILE_BYTES} bytes`
      } catch (err) {
        if (!(err instanceof RuleFileError)) throw err
        reason = err.message
      }
      out.push(reason === undefined ? { file, size: st.size, editable: true } : { file, size: st.size, editable: false, reason })
    }
    return out
  }

  async read (name: unknown): Promise<RuleFileContent> {
    const file = checkName(name, false)
    const buf = await this.readExisting(file)
    if (buf === undefined) refuse({ code: 'LB_ERR_RULE_EDIT_NOT_FOUND', status: 404, message: `no rule file ${file}` })
    return { file, content: buf.toString('utf8'), etag: etagOf(buf), size: buf.length }
  }

  /**
   * The file's bytes, or undefined when it does not exist. Opened with O_NOFOLLOW and checked on
   * the open descriptor, so that a link swapped in after a check is not followed either.
   */
  private async readExisting (file: string): Promise<Buffer | undefined> {
    let fh: FileHandle
    try {
      fh = await open(join(this.dir, file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return undefined
      if (code === 'ELOOP') checkKind(file, { isFile: () => false, isSymbolicLink: () => true })
      throw err
    }
    try {
      const st = await fh.stat()
      checkKind(file, { isFile: () => st.isFile(), isSymbolicLink: () => false })
      if (st.size > MAX_RULE_FILE_BYTES) refuse({ code: 'LB_ERR_RULE_EDIT_TOO_LARGE', status: 413, message: `${file} is larger than ${MAX_RULE_FILE_BYTES} bytes: edit it outside the console` })
      return await fh.readFile()
    } finally {
      await fh.close()
    }
  }

  /**
   * Replaces (or creates, with `etag: null`) a rule file with `content`, only if its current
   * version is still `etag` (409 otherwise). The caller has compiled `content` first.
   */
  async save (name: unknown, content: string, etag: string | null, creating: boolean): Promise<{ file: string, etag: string, size: number, created: boolean, previous: string | null }> {
    const file = checkName(name, creating)
    const bytes = Buffer.from(content, 'utf8')
    if (bytes.length > MAX_RULE_FILE_BYTES) refuse({ code: 'LB_ERR_RULE_EDIT_TOO_LARGE', status: 413, message: `a rule file edited here is at most ${MAX_RULE_FILE_BYTES} bytes; this one is ${bytes.length}` })
    const run = this.queue.then(async () => await this.write(file, bytes, etag))
    this.queue = run.catch(() => {})
    return await run
  }

  private async write (file: string, bytes: Buffer, etag: string | null): Promise<{ file: string, etag: string, size: number, created: boolean, previous: string | null }> {
    const target = join(this.dir, file)
    const current = async (): Promise<{ etag: string | null, mode: number }> => {
      const buf = await this.readExisting(file)
      if (buf === undefined) return { etag: null, mode: 0o644 }
      return { etag: etagOf(buf), mode: (await lstat(target)).mode & 0o777 }
    }
    const conflict = (now: string | null): never => refuse({
      code: 'LB_ERR_RULE_EDIT_CONFLICT',
      status: 409,
      etag: now,
      message: now === null ? `${file} was deleted since it was read` : etag === null ? `${file} already exists` : `${file} changed since it was read: load it again and redo the change`,
    })
    const before = await current()
    if (before.etag !== etag) conflict(before.etag)
    const temp = join(this.dir, `.${file}.${randomBytes(6).toString('hex')}.tmp`)
    // O_EXCL: never write through something placed at the temporary name.
    const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, before.mode)
    try {
      try {
        await fh.writeFile(bytes)
        await fh.sync()
      } finally {
        await fh.close()
      }
      // The window between this check and the rename is as short as it can be made.
      const again = await current()
      if (again.etag !== etag) conflict(again.etag)
      if (etag === null) {
        // link() fails if the name exists: a file created meanwhile is never replaced.
        try {
          await link(temp, target)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') conflict((await current()).etag)
          throw err
        }
        await unlink(temp)
      } else {
        await rename(temp, target)
      }
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw err
    }
    await this.syncDir()
    return { file, etag: etagOf(bytes), size: bytes.length, created: etag === null, previous: before.etag }
  }

  /** The rename itself survives a crash once the directory is synced (best effort elsewhere). */
  private async syncDir (): Promise<void> {
    const dh = await open(this.dir, constants.O_RDONLY).catch(() => undefined)
    if (dh === undefined) return
    await dh.sync().catch(() => {})
    await dh.close()
  }
}
