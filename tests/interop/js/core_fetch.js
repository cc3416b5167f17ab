// Read one partition from an offset (assign-style): {bootstrap, topic, partition, offset, count}
// -> {messages: [{offset, timestamp, key, value, headers}]}
'use strict'
const { makeKafka, withCluster, fetchFrom, main } = require('./core_lib')

main(async ({ bootstrap, topic, partition = 0, offset = 0, count, timeoutMs = 15000 }) => {
  const messages = await withCluster(makeKafka(bootstrap), cluster =>
    fetchFrom(cluster, topic, partition, offset, count, timeoutMs)
  )
  return { messages }
})
