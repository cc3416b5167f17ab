// Produce records (one send per `batches` slice) then read them back from offset 0 with the
// assign-style reader: {bootstrap, topic, records, compression?, batches?}
'use strict'
const { COMPRESSION, makeKafka, toMessage, withCluster, fetchFrom, main } = require('./core_lib')

main(async ({ bootstrap, topic, records, compression = 'none', batches = 1 }) => {
  const kafka = makeKafka(bootstrap)
  const producer = kafka.producer()
  await producer.connect()
  const offsets = []
  try {
    const messages = records.map(r => ({ ...toMessage(r), partition: 0 }))
    const size = Math.ceil(messages.length / batches)
    for (let i = 0; i < messages.length; i += size) {
      const meta = await producer.send({
        topic,
        compression: COMPRESSION[compression],
        messages: messages.slice(i, i + size),
      })
      for (const m of meta) {
        if (m.errorCode) throw new Error(`produce error ${m.errorCode}`)
        offsets.push(Number(m.baseOffset))
      }
    }
  } finally {
    await producer.disconnect()
  }
  const messages = await withCluster(kafka, cluster => fetchFrom(cluster, topic, 0, 0, records.length))
  return { offsets, messages }
})
