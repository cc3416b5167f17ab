// Parity: where KafkaJS's partitioners put keyed messages (tests/parity/test_producer_parity.py):
// DefaultPartitioner, LegacyPartitioner, and a custom partitioner.

'use strict'

const { Partitioners } = require('kafkajs')
const { kafka, args, main } = require('./lib')

const lastPartition = () => ({ partitionMetadata }) =>
  partitionMetadata[partitionMetadata.length - 1].partitionId

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 7 }] })
  await admin.disconnect()
  const record = {}
  const factories = {
    default: Partitioners.DefaultPartitioner,
    legacy: Partitioners.LegacyPartitioner,
    custom: lastPartition,
  }
  for (const [name, createPartitioner] of Object.entries(factories)) {
    const producer = kafka.producer({ createPartitioner })
    await producer.connect()
    const placed = {}
    for (const key of args.keys) {
      const [meta] = await producer.send({ topic: args.topic, messages: [{ key, value: 'v' }] })
      placed[key] = meta.partition
    }
    record[name] = placed
    await producer.disconnect()
  }
  return record
})
