// Parity scenario "seek then restart" (tests/parity/test_consumer_seek.py): member A handles
// offset 0, seeks to 10 from its handler and is held at offset 10; the record shows the group's
// committed offset then, after A stops, and where member B of the same group starts.
// Argument: {"brokers", "topic", "group"}.

'use strict'

const { args, kafka, waitFor, main } = require('./lib')

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 1 }] })
  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < 20; i++) messages.push({ value: `m${i}` })
  await producer.send({ topic: args.topic, messages })
  await producer.disconnect()

  const committed = async () => {
    const [{ partitions }] = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })
    return Number(partitions[0].offset)
  }

  const a = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  const deliveredA = []
  let release
  const gate = new Promise(resolve => (release = resolve))
  let held = false
  await a.connect()
  await a.subscribe({ topic: args.topic, fromBeginning: true })
  await a.run({
    eachMessage: async ({ message }) => {
      const offset = Number(message.offset)
      deliveredA.push(offset)
      if (offset === 0) a.seek({ topic: args.topic, partition: 0, offset: '10' })
      if (offset === 10) {
        held = true
        await gate
      }
    },
  })
  await waitFor(() => held, 'A at offset 10')
  // The seek's commit is asynchronous in both clients: give it a moment to land.
  let afterSeek = await committed()
  const deadline = Date.now() + 5000
  while (afterSeek !== 10 && Date.now() < deadline) afterSeek = await committed()
  const stopping = a.disconnect()
  release()
  await stopping
  const afterStop = await committed()

  const b = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  const deliveredB = []
  await b.connect()
  await b.subscribe({ topic: args.topic, fromBeginning: true })
  await b.run({ eachMessage: async ({ message }) => { deliveredB.push(Number(message.offset)) } })
  await waitFor(() => deliveredB.includes(19), 'B at the end')
  await b.disconnect()
  await admin.disconnect()
  return {
    delivered_a: deliveredA,
    committed_after_seek: afterSeek,
    committed_after_stop: afterStop,
    delivered_b: deliveredB,
  }
})
