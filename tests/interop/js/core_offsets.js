// Earliest/latest and by-timestamp offsets through KafkaJS admin:
// {bootstrap, topic, timestamps: [ms...]} -> {offsets: [{partition, offset, high, low}], byTimestamp: {ts: offset}}
'use strict'
const { makeKafka, main } = require('./core_lib')

main(async ({ bootstrap, topic, timestamps }) => {
  const admin = makeKafka(bootstrap).admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    const byTimestamp = {}
    for (const ts of timestamps) {
      const r = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
      byTimestamp[ts] = Number(r[0].offset)
    }
    return { offsets, byTimestamp }
  } finally {
    await admin.disconnect()
  }
})
