// KafkaJS admin: create (with configs), duplicate create, list, metadata, describe configs,
// create partitions, delete. {bootstrap, topic} -> observations for the Python test to check.
'use strict'
const { ConfigResourceTypes } = require('kafkajs')
const { makeKafka, main } = require('./core_lib')

main(async ({ bootstrap, topic }) => {
  const admin = makeKafka(bootstrap).admin()
  await admin.connect()
  const out = {}
  try {
    out.created = await admin.createTopics({
      topics: [{ topic, numPartitions: 3, replicationFactor: 1,
                 configEntries: [{ name: 'retention.ms', value: '123456' }] }],
      waitForLeaders: true,
    })
    // KafkaJS turns TOPIC_ALREADY_EXISTS (and only that error) into a `false` result.
    out.duplicate = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    out.listed = (await admin.listTopics()).includes(topic)
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    out.partitions = md.topics[0].partitions.map(p => p.partitionId).sort()
    const cluster = await admin.describeCluster()
    out.cluster = { clusterId: cluster.clusterId, brokers: cluster.brokers.length, controller: cluster.controller }
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    })
    const entries = described.resources[0].configEntries
    out.configs = Object.fromEntries(entries.map(e => [e.configName, { value: e.configValue, isDefault: e.isDefault }]))
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
    const md5 = await admin.fetchTopicMetadata({ topics: [topic] })
    out.partitionsAfter = md5.topics[0].partitions.length
    await admin.deleteTopics({ topics: [topic] })
    out.listedAfterDelete = (await admin.listTopics()).includes(topic)
    return out
  } finally {
    await admin.disconnect()
  }
})
