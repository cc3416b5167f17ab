// Produce JSON records with KafkaJS: {bootstrap, topic, records, compression?, acks?}
// -> {offsets: [base offset per send]}; each call is one producer.send (one batch per partition).
'use strict'
const { COMPRESSION, makeKafka, toMessage, main } = require('./core_lib')

main(async ({ bootstrap, topic, records, compression = 'none', acks = -1, batches = 1 }) => {
  const producer = makeKafka(bootstrap).producer({ allowAutoTopicCreation: true })
  await producer.connect()
  try {
    const messages = records.map(toMessage)
    const size = Math.ceil(messages.length / batches)
    const offsets = []
    for (let i = 0; i < messages.length; i += size) {
      const meta = await producer.send({
        topic,
        acks,
        compression: COMPRESSION[compression],
        messages: messages.slice(i, i + size),
      })
      for (const m of meta) {
        if (m.errorCode) throw new Error(`produce error ${m.errorCode}`)
        offsets.push(Number(m.baseOffset))
      }
    }
    return { offsets }
  } finally {
    await producer.disconnect()
  }
})
