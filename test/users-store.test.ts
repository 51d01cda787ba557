/** The users file as the broker reads it: reloads on change, and concurrent lookups during a reload. */
import { describe, it, expect } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UsersStore, writeUsersFile } from '../src/auth/users-file.js'
import { sleep } from './helpers/mqtt.js'

describe('UsersStore', () => {
  it('lets every lookup that arrives during a reload see the reloaded users', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lorabridge-users-'))
    try {
      const file = join(dir, 'users.yaml')
      const store = new UsersStore(file, 50)
      await store.load()
      expect(await store.get('alice')).toBeUndefined()
      await writeUsersFile(file, new Map([['alice', { name: 'alice', role: 'admin', apps: [], downlink: false }]]))
      await sleep(60)
      // Two connections at the same moment: both must see alice.
      const [a, b] = await Promise.all([store.get('alice'), store.get('alice')])
      expect(a?.role).toBe('admin')
      expect(b?.role).toBe('admin')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
