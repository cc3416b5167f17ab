// Parity scenario "pause a topic then rebalance" (tests/parity/test_consumer_pause.py): member A
// pauses the whole topic right after run(); B joins (A keeps one partition) and leaves (A gets
// both); the topic stays paused for every partition A gets, until A resumes it.
// Argument: {"brokers", "topic", "group"}.

'use strict'

const { args, kafka, sleep, waitFor, main } = require('./lib')

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 2 }] })
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let p = 0; p < 2; p++) for (let i = 0; i < 3; i++) messages.push({ partition: p, value: `p${p}-${i}` })
  await producer.send({ topic: args.topic, messages })
  await producer.disconnect()

  const options = { groupId: args.group, maxWaitTimeInMs: 100, sessionTimeout: 6000, heartbeatInterval: 300 }
  // Topic names differ between the two runs: the record calls the scenario's topic "T".
  const shape = list => list.map(({ topic, partitions }) => ({ topic: topic === args.topic ? 'T' : topic, partitions }))
  const a = kafka.consumer(options)
  let joinsA = 0
  a.on(a.events.GROUP_JOIN, () => { joinsA += 1 })
  const deliveredA = []
  await a.connect()
  await a.subscribe({ topic: args.topic, fromBeginning: true })
  await a.run({ eachMessage: async ({ message }) => { deliveredA.push(message.value.toString()) } })
  a.pause([{ topic: args.topic }])
  const pausedAfterRun = shape(a.paused())
  await sleep(500)
  const beforeB = deliveredA.length

  const b = kafka.consumer(options)
  const deliveredB = []
  await b.connect()
  await b.subscribe({ topic: args.topic, fromBeginning: true })
  await b.run({ eachMessage: async ({ message }) => { deliveredB.push(message.value.toString()) } })
  await waitFor(() => joinsA >= 2, 'A rejoined with B')
  await waitFor(() => deliveredB.length === 3, 'B read its partition')
  const pausedWithB = shape(a.paused()).map(({ topic, partitions }) => ({ topic, count: partitions.length }))
  await b.disconnect()
  await waitFor(() => joinsA >= 3, 'A rejoined alone')
  await sleep(500)
  const pausedAlone = shape(a.paused())
  const beforeResume = deliveredA.length
  a.resume([{ topic: args.topic }])
  await waitFor(() => deliveredA.length === 3, 'A read the rest')
  await sleep(300)
  await a.disconnect()
  await admin.disconnect()
  return {
    paused_after_run: pausedAfterRun,
    delivered_a_before_b: beforeB,
    paused_with_b: pausedWithB,
    delivered_b: deliveredB.length,
    paused_alone: pausedAlone,
    delivered_a_before_resume: beforeResume,
    delivered_a: deliveredA.length,
    all: [...deliveredA, ...deliveredB].sort(),
  }
})
