// Idempotent KafkaJS producer: {bootstrap, topic, count, perSend} -> {offsets}
// Sends `count` values "m<i>" in order, `perSend` per producer.send.
'use strict'
const { makeKafka, main } = require('./core_lib')

main(async ({ bootstrap, topic, count, perSend = 10 }) => {
  const producer = makeKafka(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const offsets = []
    for (let i = 0; i < count; i += perSend) {
      const messages = []
      for (let j = i; j < Math.min(count, i + perSend); j++) messages.push({ value: `m${j}`, partition: 0 })
      const meta = await producer.send({ topic, acks: -1, messages })
      for (const m of meta) offsets.push(Number(m.baseOffset))
    }
    return { offsets }
  } finally {
    await producer.disconnect()
  }
})
