/**
 * The console's files: plain HTML, CSS and JavaScript from `static/` beside this module (the build
 * copies them next to the compiled code), and mqtt.js's own browser bundle from the installed
 * `mqtt` package, so that the page needs nothing from outside the daemon.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Asset { body: Buffer, type: string }

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
}

/** Files served without a session: what the login page needs. */
export const PUBLIC_ASSETS = new Set(['login.html', 'login.js', 'console.css', 'logo.svg'])
const STATIC_FILES = ['login.html', 'login.js', 'console.html', 'console.js', 'console.css', 'logo.svg']
/** The rule editor (rule-editor.ts): its own files, behind the login like the console's. */
const EDITOR_FILES = ['rule-editor.js', 'rule-editor.css']

export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url))

function mqttBundlePath (): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('mqtt/package.json')), 'dist', 'mqtt.min.js')
}

/** Reads every file once; they are small and never change while the daemon runs. */
export async function loadAssets (dir = STATIC_DIR): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>()
  for (const name of [...STATIC_FILES, ...EDITOR_FILES]) {
    assets.set(name, { body: await readFile(join(dir, name)), type: TYPES[name.split('.').pop()!]! })
  }
  assets.set('mqtt.min.js', { body: await readFile(mqttBundlePath()), type: TYPES.js! })
  return assets
}
