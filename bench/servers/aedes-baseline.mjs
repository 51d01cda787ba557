// The baseline: plain Aedes with the same socket options lorabridge uses (noDelay), no hooks, in
// memory. Prints {"port": N} once listening; stops on SIGTERM.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const broker = await Aedes.createBroker({ drainTimeout: 30000 })
const server = createServer(socket => { socket.setNoDelay(true); broker.handle(socket) })
server.listen(0, '127.0.0.1', () => { process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n') })
process.on('SIGTERM', () => { server.close(); broker.close(() => process.exit(0)) })
