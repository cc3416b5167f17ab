// Transactional KafkaJS producer: {bootstrap, topic, transactionalId}
// commits "ok-0..4", aborts "no-0..4", commits "last" -> {}
'use strict'
const { makeKafka, main } = require('./core_lib')

main(async ({ bootstrap, topic, transactionalId }) => {
  const producer = makeKafka(bootstrap).producer({
    transactionalId, idempotent: true, maxInFlightRequests: 1,
  })
  await producer.connect()
  try {
    const values = prefix => [0, 1, 2, 3, 4].map(i => ({ value: `${prefix}-${i}`, partition: 0 }))
    let txn = await producer.transaction()
    await txn.send({ topic, messages: values('ok') })
    await txn.commit()
    txn = await producer.transaction()
    await txn.send({ topic, messages: values('no') })
    await txn.abort()
    txn = await producer.transaction()
    await txn.send({ topic, messages: [{ value: 'last', partition: 0 }] })
    await txn.commit()
    return {}
  } finally {
    await producer.disconnect()
  }
})
