// Parity: admin calls (tests/parity/test_producer_parity.py): describeCluster,
// deleteTopicRecords, fetchOffsets with resolveOffsets.

'use strict'

const { kafka, args, main } = require('./lib')

main(async () => {
  const { topic, group } = args
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer()
  await producer.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  for (const partition of [0, 1]) {
    await producer.send({ topic, messages: [0, 1, 2, 3].map(() => ({ value: 'x', partition })) })
  }
  const record = {}
  const cluster = await admin.describeCluster()
  record.cluster = {
    brokers: cluster.brokers.map(b => ({ node_id: b.nodeId, host: b.host, port: b.port })),
    controller: cluster.controller,
    cluster_id: cluster.clusterId,
  }
  record.delete_result = (await admin.deleteTopicRecords({
    topic,
    partitions: [{ partition: 0, offset: '3' }, { partition: 1, offset: '-1' }],
  })) === undefined ? null : 'something'
  record.after_delete = (await admin.fetchTopicOffsets(topic)).map(o => ({
    partition: o.partition,
    low: Number(o.low),
    high: Number(o.high),
  }))
  await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] })
  const shape = fetched =>
    fetched.map(t => ({
      topic: t.topic === topic ? 'topic' : t.topic,
      partitions: t.partitions.map(p => ({
        partition: p.partition,
        offset: Number(p.offset),
        metadata: p.metadata,
      })),
    }))
  record.fetched = shape(await admin.fetchOffsets({ groupId: group, topics: [topic] }))
  record.resolved = shape(
    await admin.fetchOffsets({ groupId: group, topics: [topic], resolveOffsets: true })
  )
  record.after_resolve = shape(await admin.fetchOffsets({ groupId: group, topics: [topic] }))
  await producer.disconnect()
  await admin.disconnect()
  return record
})
