// KafkaJS against klamm's SASL/TLS listeners (tests/interop/test_auth_kafkajs.py).
//
// Reads one JSON object on stdin: {brokers, sasl: {mechanism, username, password} | null,
// ca: PEM string | null, topic, count}. Produces `count` records, reads them back in a consumer
// group, and prints one JSON line: {values: [...]} or, when the login fails,
// {error: name, type, message, elapsedMs}.

'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main() {
  const args = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'))
  const kafka = new Kafka({
    clientId: 'klamm-auth-test',
    brokers: args.brokers,
    ssl: args.ca ? { ca: [args.ca], servername: 'localhost' } : false,
    sasl: args.sasl || undefined,
    logLevel: logLevel.NOTHING,
    retry: { retries: args.retries ?? 2, initialRetryTime: 50 },
    connectionTimeout: 3000,
  })
  const producer = kafka.producer({ allowAutoTopicCreation: true })
  const started = Date.now()
  try {
    await producer.connect()
  } catch (e) {
    console.log(JSON.stringify({
      error: e.name, type: e.type || null, message: e.message, elapsedMs: Date.now() - started,
    }))
    return
  }
  const messages = []
  for (let i = 0; i < args.count; i++) messages.push({ key: 'k', value: `v${i}` })
  await producer.send({ topic: args.topic, messages })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: `g-${args.topic}` })
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  const values = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out with ${values.length} values`)), 20000)
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length === args.count) {
          clearTimeout(timer)
          resolve()
        }
      },
    }).catch(reject)
  })
  await consumer.disconnect()
  console.log(JSON.stringify({ values }))
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
