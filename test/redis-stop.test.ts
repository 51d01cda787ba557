/**
 * A stop while Redis does not answer (frozen with SIGSTOP: connections open, nothing answered).
 * Before, the stop waited forever on the instance's stopped status and on the emitter's QUIT, and
 * when cut short, mqemitter-redis's dropped QUIT promises became unhandled rejections ("Connection
 * is closed", seen in a loaded CI run). Now each component gets a bounded time, and nothing goes
 * unheard: vitest fails this file on any unhandled rejection. (With the daemon's own 5 s per
 * component, the cut QUITs happen inside the stop: the conditions of the CI failure.)
 */
import { describe, it, expect } from 'vitest'
import { startTestDaemon } from './helpers/daemon.js'
import { startRedis } from './helpers/redis-server.js'

describe('stopping while Redis does not answer', () => {
  it('ends within the per-component timeout, says which components it left, and leaves no rejection unheard', async () => {
    const redis = await startRedis()
    try {
      const t = await startTestDaemon({ redis: { url: redis.url }, mqtt: { listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0, anonymous: true }] } })
      process.kill(redis.pid, 'SIGSTOP')
      try {
        await t.stop()
      } finally {
        process.kill(redis.pid, 'SIGCONT')
      }
      const left = t.logs.withCode('LB_ERR_COMPONENT_STOP').map(l => l.component)
      expect(left).toContain('instance-status')
      expect(t.logs.find(l => l.msg === 'lorabridge stopped')).toBeDefined()
      // What the stop left behind (closeRedis cuts a connection whose QUIT hangs after 2 s)
      // settles here, inside the test.
      await new Promise(resolve => setTimeout(resolve, 3000))
    } finally {
      await redis.stop()
    }
  })
})
