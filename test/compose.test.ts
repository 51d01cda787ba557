/**
 * docker-compose.yml cannot be run here (no container engine); check what can be checked without
 * one: every file it and the Dockerfile refer to exists, and the container's lorabridge
 * configuration passes `config check`. (Validation against the Compose JSON Schema and a real
 * Mosquitto bridge run come with the operations work.)
 */
import { describe, it, expect } from 'vitest'
import { readFile, access } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { parse } from 'yaml'
import { runCli } from './helpers/cli.js'

const root = fileURLToPath(new URL('..', import.meta.url))

describe('docker-compose.yml', () => {
  it('refers only to files that exist', async () => {
    const compose = parse(await readFile(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { build?: string, volumes?: string[] }> }
    expect(Object.keys(compose.services).sort()).toEqual(['lorabridge', 'mosquitto', 'redis'])
    await access(join(root, compose.services.lorabridge!.build ?? '', 'Dockerfile'))
    for (const service of Object.values(compose.services)) {
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0] as string
        if (source.startsWith('./')) await access(join(root, source))
      }
    }
    const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8')
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      const parts = (m[1] as string).trim().split(/\s+/)
      for (const src of parts.slice(0, -1)) await access(join(root, src))
    }
  })

  it('gives the container a configuration that passes config check', async () => {
    const r = await runCli(['-c', join(root, 'docker', 'lorabridge.yaml'), 'config', 'check'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('bridges with a Mosquitto configured for a non-Mosquitto broker over TLS 1.2', async () => {
    const conf = await readFile(join(root, 'mosquitto', 'mosquitto.conf'), 'utf8')
    expect(conf).toMatch(/^try_private false$/m)
    expect(conf).toMatch(/^bridge_tls_version tlsv1\.2$/m)
    expect(conf).toMatch(/^topic lorabridge\/# in 1$/m)
  })
})
