// KafkaJS admin on the operator APIs: describe configs with and without synonyms, list and alter
// partition reassignments. {bootstrap, topic} -> observations for the Python test to check.
'use strict'
const { ConfigResourceTypes } = require('kafkajs')
const { makeKafka, main } = require('./core_lib')

main(async ({ bootstrap, topic }) => {
  const admin = makeKafka(bootstrap).admin()
  await admin.connect()
  const out = {}
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: 2, replicationFactor: 1,
                 configEntries: [{ name: 'retention.ms', value: '1234' }] }],
      waitForLeaders: true,
    })
    const synonymsOf = async (includeSynonyms) => {
      const described = await admin.describeConfigs({
        includeSynonyms, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      })
      const entry = described.resources[0].configEntries.find(e => e.configName === 'retention.ms')
      return (entry.configSynonyms || []).map(s => [s.configName, s.configValue, s.configSource])
    }
    out.plainSynonyms = await synonymsOf(false)
    out.synonyms = await synonymsOf(true)
    out.listed = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [0, 1] }] })
    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [0] }] }] })
    out.kept = true
    try {
      await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 1, replicas: [0, 1] }] }] })
      out.refused = null
    } catch (e) {
      out.refused = { name: e.name, types: (e.errors || []).map(x => x.type) }
    }
    return out
  } finally {
    await admin.disconnect()
  }
})
