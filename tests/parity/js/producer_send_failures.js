// Parity: what a send that cannot be delivered does (tests/parity/test_producer_parity.py).
// 1. A topic that does not exist, auto-creation off: the send fails once the retries ran out.
// 2. The broker goes down after a first send: the next send fails once the retries ran out.
// The record keeps what a user's code looks at: the error's kind, `retriable`, what caused it,
// and whether the wait was the retry policy's (bounds, not exact times).

'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const { args, sleep, main } = require('./lib')

const kafka = new Kafka({
  clientId: 'klamm-parity',
  brokers: args.brokers,
  logLevel: logLevel.NOTHING,
  retry: args.retry,
})

const causeOf = error => {
  const text = `${error.message} ${error.cause ? error.cause.name + ' ' + error.cause.message : ''}`
  if (/Connection error|ECONNREFUSED|KafkaJSConnection/.test(text)) return 'connection'
  if (/does not host this topic-partition/.test(text)) return 'unknown_topic'
  return text
}

async function observe(send) {
  const started = Date.now()
  try {
    await send()
    return { delivered: true }
  } catch (error) {
    const elapsed = Date.now() - started
    return {
      delivered: false,
      name: error.name,
      retriable: error.retriable,
      gave_up: error.name === 'KafkaJSNumberOfRetriesExceeded' || error.name === 'KafkaJSNonRetriableError',
      cause: causeOf(error),
      waited_for_the_retries: elapsed >= args.min_wait_ms,
      within_the_bound: elapsed <= args.max_wait_ms,
    }
  }
}

main(async () => {
  const record = {}
  const strict = kafka.producer({ allowAutoTopicCreation: false })
  await strict.connect()
  record.missing_topic = await observe(() =>
    strict.send({ topic: args.missing, messages: [{ value: 'x' }] })
  )
  await strict.disconnect()

  const producer = kafka.producer()
  await producer.connect()
  record.before = await observe(() => producer.send({ topic: args.topic, messages: [{ value: 'a' }] }))
  process.stdout.write('READY\n')
  while (!fs.existsSync(args.marker)) await sleep(20) // the test stops the broker
  record.broker_down = await observe(() =>
    producer.send({ topic: args.topic, messages: [{ value: 'b' }] })
  )
  await producer.disconnect().catch(() => {})
  return record
})
