'use strict'

// Runs the aedes-persistence abstract test suite against aedes-persistence-redis
// on the redis-server given by env REDIS_URL (a throwaway server: it is flushed
// before every instance is built).
//
// Wiring mirrors node_modules/aedes-persistence-redis/test/abs.js, except that
// every Redis connection goes to REDIS_URL instead of the default 127.0.0.1:6379.
//
// By default the suite is the aedes-persistence version aedes-persistence-redis
// was built for (10.x, resolved from its own directory). For a manual
// comparison run, ABSTRACT_PATH may point at another abstract.js (e.g. the
// 11.x copy nested under aedes); the version checks are then skipped.
//
//   REDIS_URL=redis://127.0.0.1:PORT node --test --test-concurrency=1 test/compat/persistence-abstract.cjs

const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { once } = require('node:events')
const Redis = require('ioredis')
const mqemitterRedis = require('mqemitter-redis')
const persistence = require('aedes-persistence-redis')

const REDIS_URL = process.env.REDIS_URL
if (!REDIS_URL) {
  throw new Error('REDIS_URL must be set (e.g. redis://127.0.0.1:6380)')
}

let abs
if (process.env.ABSTRACT_PATH) {
  abs = require(path.resolve(process.env.ABSTRACT_PATH))
  console.log(`# abstract suite: ${path.resolve(process.env.ABSTRACT_PATH)} (manual override)`)
} else {
  // The abstract suite we run must be the very copy aedes-persistence-redis uses.
  const pkgVersion = require('aedes-persistence/package.json').version
  assert.ok(pkgVersion.startsWith('10.'),
    `expected aedes-persistence 10.x at top level, got ${pkgVersion}`)
  const redisPkgDir = path.dirname(require.resolve('aedes-persistence-redis/package.json'))
  const ours = require.resolve('aedes-persistence/abstract')
  const theirs = require.resolve('aedes-persistence/abstract', { paths: [redisPkgDir] })
  assert.strictEqual(theirs, ours,
    'aedes-persistence-redis must resolve the same aedes-persistence/abstract as this runner')
  const theirsCallback = require.resolve('aedes-persistence/callBackPersistence.js', { paths: [redisPkgDir] })
  assert.strictEqual(path.dirname(theirsCallback), path.dirname(ours),
    'aedes-persistence-redis must be built on the same aedes-persistence copy')
  abs = require('aedes-persistence/abstract')
  console.log(`# abstract suite: aedes-persistence@${pkgVersion} (${ours})`)
}
console.log(`# persistence: aedes-persistence-redis@${require('aedes-persistence-redis/package.json').version}`)

function sleep (sec) {
  return new Promise(resolve => setTimeout(resolve, sec * 1000))
}

function unref () {
  this.connector.stream.unref()
}

async function createDB () {
  const db = new Redis(REDIS_URL)
  await once(db, 'connect')
  await db.flushall()
  return db
}

async function cleanDB () {
  const db = await createDB()
  db.disconnect()
}

function toBroker (id, emitter) {
  return {
    id,
    publish: emitter.emit.bind(emitter),
    subscribe: emitter.on.bind(emitter),
    unsubscribe: emitter.removeListener.bind(emitter)
  }
}

// mqemitter-redis subscribes at once; ioredis's ready check (INFO) on the subscriber connection
// could then fail in subscriber mode and throw from a timer, so that connection skips it.
function emitterOptions () {
  return { pubConn: new Redis(REDIS_URL), subConn: new Redis(REDIS_URL, { enableReadyCheck: false }) }
}

function buildEmitter () {
  const emitter = mqemitterRedis(emitterOptions())
  emitter.subConn.on('connect', unref)
  emitter.pubConn.on('connect', unref)
  return emitter
}

async function build () {
  await cleanDB()
  const instance = persistence({ conn: new Redis(REDIS_URL) })
  // make instance.destroy close the broker's emitter as well
  const oldDestroy = instance.destroy.bind(instance)
  instance.destroy = (cb) => {
    oldDestroy(() => {
      instance.broker.mq.close(cb)
    })
  }
  return instance
}

async function main () {
  test('external Redis conn', async t => {
    t.plan(1)
    const externalRedis = await createDB()
    const emitter = mqemitterRedis(emitterOptions())
    const instance = persistence({ conn: externalRedis })
    instance.broker = toBroker('1', emitter)
    await once(instance, 'ready')
    t.assert.ok(true, 'instance ready')
    externalRedis.disconnect()
    instance.destroy()
    emitter.close()
  })

  abs({
    test,
    buildEmitter,
    persistence: build,
    waitForReady: true
  })

  // make sure everything cleans up nicely
  await sleep(2)
}

main()
