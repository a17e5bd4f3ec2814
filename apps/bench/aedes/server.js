// aedes, the MQTT broker the original peerchat server was built on, as a plain MQTT-over-TCP
// broker on loopback: the baseline `peerchat-bench broker --broker aedes` measures against.
//
// Usage: node server.js [PORT]   (0, the default, picks a free port)
// Prints `aedes: mqtt listening on 127.0.0.1:PORT` once it accepts connections, the same
// announcement peerchat-server makes, so the benchmark starts both brokers the same way.

import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const port = Number(process.argv[2] ?? 0)
const broker = await Aedes.createBroker()
const server = createServer(broker.handle)

server.listen(port, '127.0.0.1', () => {
  const { address, port: bound } = server.address()
  console.log(`aedes: mqtt listening on ${address}:${bound}`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close()
    broker.close(() => process.exit(0))
  })
}
