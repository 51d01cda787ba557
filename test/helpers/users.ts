/**
 * Writes a users file for a test daemon directly (salted scrypt hashes, as `lorabridge users add`
 * writes them), without a CLI process per user. The daemon reloads the file within a second.
 */
import { join } from 'node:path'
import { hashPassword } from '../../src/auth/password.js'
import { readUsersFile, writeUsersFile, type User } from '../../src/auth/users-file.js'
import type { Role } from '../../src/auth/users-file.js'
import type { TestDaemon } from './daemon.js'

export interface TestUser { role: Role, password?: string, apps?: string[], downlink?: boolean, gateway?: string }

export function usersFileOf (t: TestDaemon): string { return join(t.dataDir, 'users.yaml') }

/** Adds or replaces these users (others are kept) in a test daemon's users file. */
export async function putUsers (t: TestDaemon, users: Record<string, TestUser>): Promise<void> {
  await addUsers(usersFileOf(t), users)
}

/** Adds or replaces these users (others are kept) in `file`, created if missing. */
export async function addUsers (file: string, users: Record<string, TestUser>): Promise<void> {
  const all = await readUsersFile(file)
  for (const [name, u] of Object.entries(users)) {
    const user: User = { name, role: u.role, apps: u.apps ?? [], downlink: u.downlink ?? false }
    if (u.password !== undefined) user.passwordHash = await hashPassword(u.password)
    if (u.gateway !== undefined) user.gateway = u.gateway
    all.set(name, user)
  }
  await writeUsersFile(file, all)
}

export async function removeUsers (t: TestDaemon, ...names: string[]): Promise<void> {
  const file = usersFileOf(t)
  const all = await readUsersFile(file)
  for (const name of names) all.delete(name)
  await writeUsersFile(file, all)
}
