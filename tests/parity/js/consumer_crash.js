// Parity scenario "crash with and without restart" (tests/parity/test_consumer_crash.py).
// Member A's handler fails on the message "poison"; the variant says how:
//   "no_restart": an Error every time, restartOnFailure answers false;
//   "restart":    an Error on the first two attempts only, no restartOnFailure;
//   "type_error": a TypeError (a programming error) every time.
// The record: A's lifecycle events up to CRASH, the CRASH payload, how often A's handler saw the
// poison, whether A joined again, and what member B (started after the crash) receives.
// Argument: {"brokers", "topic", "group", "variant"}.

'use strict'

const { args, kafka, sleep, waitFor, main, eventType, payloadKeys } = require('./lib')

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 1 }] })
  const producer = kafka.producer()
  await producer.connect()
  const values = ['m0', 'm1', 'poison', 'm3']
  await producer.send({ topic: args.topic, messages: values.map(value => ({ value })) })
  await producer.disconnect()

  const retry = { initialRetryTime: 50, retries: 1 }
  if (args.variant === 'no_restart') retry.restartOnFailure = async () => false
  const a = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100, retry })
  const events = []
  let crash = null
  let joins = 0
  for (const name of ['CONNECT', 'GROUP_JOIN', 'STOP', 'DISCONNECT', 'CRASH']) {
    a.on(a.events[name], e => {
      if (crash === null) events.push(eventType(e.type))
      if (name === 'GROUP_JOIN') joins += 1
      if (name === 'CRASH') {
        crash = {
          keys: payloadKeys(e.payload),
          restart: e.payload.restart,
          error: e.payload.error.name.replace(/^KafkaJS/, ''),
        }
      }
    })
  }
  let poisonAttempts = 0
  const deliveredA = []
  await a.connect()
  await a.subscribe({ topic: args.topic, fromBeginning: true })
  await a.run({
    eachMessage: async ({ message }) => {
      const value = message.value.toString()
      if (value === 'poison') {
        poisonAttempts += 1
        if (args.variant === 'type_error') null.boom()
        if (args.variant === 'no_restart' || poisonAttempts <= 2) throw new Error('poison')
      }
      deliveredA.push(value)
    },
  })
  await waitFor(() => crash !== null, 'CRASH')
  const joinsAtCrash = joins
  if (crash.restart) await waitFor(() => deliveredA.includes('m3'), 'A after its restart')
  else await sleep(500) // a restart that should not come
  const rejoined = joins > joinsAtCrash

  const b = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  const deliveredB = []
  await b.connect()
  await b.subscribe({ topic: args.topic, fromBeginning: true })
  await b.run({ eachMessage: async ({ message }) => { deliveredB.push(message.value.toString()) } })
  // B gets the partition only if A left; give it a few seconds either way.
  const deadline = Date.now() + (crash.restart ? 2000 : 10000)
  while (!deliveredB.includes('m3') && Date.now() < deadline) await sleep(50)
  await b.disconnect()
  await a.disconnect()
  await admin.disconnect()
  return {
    events,
    crash,
    poison_attempts: poisonAttempts,
    delivered_a: deliveredA,
    rejoined,
    delivered_b: deliveredB,
  }
})
