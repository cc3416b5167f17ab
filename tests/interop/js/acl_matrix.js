// KafkaJS against a klamm broker with ACLs (tests/interop/test_acl_matrix.py).
//
// Reads one JSON object on stdin: {brokers, sasl: {mechanism, username, password}, action,
// topic, groupId, count}. `action` is one of:
//   produce  - send `count` records to `topic`: {ok: true} or {error, type}
//   consume  - read `count` records of `topic` in group `groupId`: {values} or {error, type}
//   topics   - the topics the user is shown: {topics: [...]} or {error, type}
// `type` is the Kafka error name KafkaJS reports (TOPIC_AUTHORIZATION_FAILED ...), found on the
// error or the error it wraps (retries exhausted, non-retriable).

'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

function failure(e) {
  let cause = e
  while (cause && !cause.type && (cause.cause || cause.originalError)) {
    cause = cause.cause || cause.originalError
  }
  return { error: e.name, type: (cause && cause.type) || null, message: e.message }
}

async function produce(kafka, args) {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < args.count; i++) messages.push({ key: 'k', value: `v${i}` })
    await producer.send({ topic: args.topic, messages })
    return { ok: true }
  } catch (e) {
    return failure(e)
  } finally {
    await producer.disconnect()
  }
}

async function consume(kafka, args) {
  const consumer = kafka.consumer({ groupId: args.groupId, retry: { retries: 1 } })
  await consumer.connect()
  const values = []
  try {
    await consumer.subscribe({ topic: args.topic, fromBeginning: true })
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'timeout', type: null, values }), 20000)
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        clearTimeout(timer)
        resolve(failure(payload.error))
      })
      consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value.toString())
          if (values.length === args.count) {
            clearTimeout(timer)
            resolve({ values })
          }
        },
      }).catch((e) => {
        clearTimeout(timer)
        resolve(failure(e))
      })
    })
  } catch (e) {
    return failure(e)
  } finally {
    await consumer.disconnect()
  }
}

async function topics(kafka) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return { topics: (await admin.listTopics()).sort() }
  } catch (e) {
    return failure(e)
  } finally {
    await admin.disconnect()
  }
}

async function main() {
  const args = JSON.parse(process.argv[2] || fs.readFileSync(0, 'utf8'))
  const kafka = new Kafka({
    clientId: 'klamm-acl-test',
    brokers: args.brokers,
    sasl: args.sasl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 50 },
    connectionTimeout: 3000,
  })
  const actions = { produce, consume, topics }
  console.log(JSON.stringify(await actions[args.action](kafka, args)))
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
