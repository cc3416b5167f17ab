// Parity: transactions with sendOffsets({consumerGroupId}) (tests/parity/test_producer_parity.py).
// The committed offsets after a committed and after an aborted transaction, and what a
// read_committed reader sees.

'use strict'

const { kafka, main } = require('./lib')

main(async () => {
  const { topic, group, txnId } = require('./lib').args
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const producer = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const offsets = async () =>
    (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions.map(p => ({
      partition: p.partition,
      offset: Number(p.offset),
    }))
  const record = {}

  let txn = await producer.transaction()
  await txn.send({ topic, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] })
  await txn.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic, partitions: [{ partition: 0, offset: '3' }] }],
  })
  await txn.commit()
  record.after_commit = await offsets()

  txn = await producer.transaction()
  await txn.send({ topic, messages: [{ value: 'dropped' }] })
  await txn.sendOffsets({
    consumerGroupId: group,
    topics: [{ topic, partitions: [{ partition: 0, offset: '9' }] }],
  })
  await txn.abort()
  record.after_abort = await offsets()
  record.end_offsets = (await admin.fetchTopicOffsets(topic)).map(o => Number(o.high))
  await producer.disconnect()
  await admin.disconnect()
  return record
})
