// Consume-transform-produce with KafkaJS: {bootstrap, src, dst, group, transactionalId, count}
// Reads `count` records of src partition 0, writes them upper-cased to dst in a transaction with
// sendOffsets for `group`: first aborted, then committed -> {}
'use strict'
const { makeKafka, withCluster, fetchFrom, unhex, main } = require('./core_lib')

main(async ({ bootstrap, src, dst, group, transactionalId, count }) => {
  const kafka = makeKafka(bootstrap)
  const input = await withCluster(kafka, cluster => fetchFrom(cluster, src, 0, 0, count))
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const messages = input.map(m => ({ value: unhex(m.value).toString().toUpperCase(), partition: 0 }))
    const offsets = { consumerGroupId: group, topics: [{ topic: src, partitions: [{ partition: 0, offset: String(count) }] }] }
    let txn = await producer.transaction()
    await txn.send({ topic: dst, messages })
    await txn.sendOffsets(offsets)
    await txn.abort()
    txn = await producer.transaction()
    await txn.send({ topic: dst, messages })
    await txn.sendOffsets(offsets)
    await txn.commit()
    return {}
  } finally {
    await producer.disconnect()
  }
})
