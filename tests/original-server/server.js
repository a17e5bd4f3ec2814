// A stand-in for the original app's signaling server, for peerchat's compatibility tests:
// the same parts (aedes behind websocket-stream, MQTT over WebSocket only, any path) and
// the registry rules docs/PROTOCOL.md states, defects included:
// - one set of names; `register` adds a name if absent, else is refused; the ack goes to
//   `<username>/incoming`;
// - a name is removed only when a connection closes whose MQTT client id equals it;
// - a publish to `<target>/incoming` from a client id not in the set is logged as from an
//   unknown user; from one in the set, to a target not in it, yields `delivery-failed` to
//   `<client id>/incoming`. The publish itself is forwarded whatever these checks say.
//
// Usage: node server.js [PORT] [WEB_ROOT]
// Prints `original-server: listening on 127.0.0.1:PORT`; serves WEB_ROOT's files over HTTP
// on the same port (the original client's page, for browser tests).

import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import { Aedes } from 'aedes'
import websocketStream from 'websocket-stream'

const port = Number(process.argv[2] ?? 0)
const webRoot = process.argv[3]
const broker = await Aedes.createBroker()
const names = new Set()

function publish (topic, message) {
  broker.publish({ topic, payload: Buffer.from(JSON.stringify(message)), qos: 0, retain: false }, () => {})
}

broker.on('publish', (packet, client) => {
  if (!client) return
  let message
  try {
    message = JSON.parse(packet.payload.toString())
  } catch {
    return
  }
  if (packet.topic === 'system/register' && message.type === 'register') {
    const username = message.username
    const success = !names.has(username)
    if (success) names.add(username)
    console.log(`register ${username}: ${success ? 'ok' : 'taken'} (client id ${client.id})`)
    publish(`${username}/incoming`, {
      type: 'register-ack',
      from: 'server',
      success,
      message: success ? 'Registration successful' : 'Username taken!'
    })
    return
  }
  const target = packet.topic.endsWith('/incoming') ? packet.topic.slice(0, -'/incoming'.length) : null
  if (target === null) return
  if (!names.has(client.id)) {
    console.log(`message from unknown user ${client.id}`)
  } else if (!names.has(target)) {
    publish(`${client.id}/incoming`, {
      type: 'delivery-failed',
      target,
      reason: 'user-offline',
      timestamp: Date.now()
    })
  }
})

broker.on('clientDisconnect', (client) => {
  if (names.delete(client.id)) console.log(`${client.id} left; name freed`)
})

const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }

const server = createServer(async (request, response) => {
  if (!webRoot) {
    response.writeHead(404).end()
    return
  }
  const path = normalize(join(webRoot, decodeURIComponent(new URL(request.url, 'http://x').pathname)))
  if (!path.startsWith(normalize(webRoot + sep))) {
    response.writeHead(404).end()
    return
  }
  try {
    const file = path.endsWith(sep) ? join(path, 'index.html') : path
    const body = await readFile(file)
    response.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' })
    response.end(body)
  } catch {
    response.writeHead(404).end()
  }
})

websocketStream.createServer({ server }, broker.handle)

server.listen(port, '127.0.0.1', () => {
  const { address, port: bound } = server.address()
  console.log(`original-server: listening on ${address}:${bound}`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close()
    broker.close(() => process.exit(0))
  })
}
