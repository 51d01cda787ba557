// The ThingPark ingest baseline: a bare Node HTTPS server answering 204, with the same certificate.
import { createServer } from 'node:https'
import { readFileSync } from 'node:fs'

const [cert, key] = process.argv.slice(2)
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key), keepAliveTimeout: 75000 }, (req, res) => {
  req.resume()
  req.on('end', () => { res.writeHead(204).end() })
})
server.listen(0, '127.0.0.1', () => { process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n') })
process.on('SIGTERM', () => { server.close(() => process.exit(0)) })
