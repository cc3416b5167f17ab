// Parity scenario "commit metadata round trip" (tests/parity/test_consumer_commit_metadata.py):
// a running member commits offsets with and without metadata; the admin reads them back.
// Argument: {"brokers", "topic", "group"}.

'use strict'

const { args, kafka, main } = require('./lib')

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 2 }] })
  const consumer = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic })
  await consumer.run({ eachMessage: async () => {} })
  await consumer.commitOffsets([
    { topic: args.topic, partition: 0, offset: '5', metadata: 'event-id-3' },
    { topic: args.topic, partition: 1, offset: '7' },
  ])
  const [{ partitions }] = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })
  await consumer.disconnect()
  await admin.disconnect()
  return {
    committed: partitions
      .map(({ partition, offset, metadata }) => ({ partition, offset: Number(offset), metadata }))
      .sort((x, y) => x.partition - y.partition),
  }
})
