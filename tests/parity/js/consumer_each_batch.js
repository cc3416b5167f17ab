// Parity scenario "eachBatch with resolveOffset and commitOffsetsIfNecessary"
// (tests/parity/test_consumer_each_batch.py): auto-resolve off, auto-commit threshold 2; the first
// batch resolves offsets 0-4 one by one and stops at 5; the next batch must start at 5.
// The record: each batch's first offset, uncommittedOffsets() after resolving 2, the offsets of
// every COMMIT_OFFSETS event, and the committed offset at the end.
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
  for (let i = 0; i < 10; i++) messages.push({ value: `m${i}` })
  await producer.send({ topic: args.topic, messages })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  const commits = []
  const generations = new Set()
  consumer.on(consumer.events.COMMIT_OFFSETS, e => {
    generations.add(e.payload.groupGenerationId)
    for (const { partitions } of e.payload.topics) for (const p of partitions) commits.push(Number(p.offset))
  })
  const firsts = []
  let uncommitted = null
  let done = false
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommitThreshold: 2,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, uncommittedOffsets }) => {
      firsts.push(Number(batch.messages[0].offset))
      for (const message of batch.messages) {
        const offset = Number(message.offset)
        if (firsts.length === 1 && offset === 5) return
        resolveOffset(message.offset)
        if (offset === 2) {
          uncommitted = uncommittedOffsets().topics.map(({ partitions }) => ({
            topic: 'T',
            partitions: partitions.map(({ partition, offset }) => ({ partition: Number(partition), offset: Number(offset) })),
          }))
        }
        await commitOffsetsIfNecessary()
        if (offset === 9) done = true
      }
    },
  })
  await waitFor(() => done, 'the last message')
  await consumer.disconnect()
  const [{ partitions }] = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })
  await admin.disconnect()
  return {
    firsts,
    uncommitted,
    commits,
    generations: [...generations],
    committed: Number(partitions[0].offset),
  }
})
