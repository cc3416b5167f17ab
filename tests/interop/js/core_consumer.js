// KafkaJS's consumer (group-based: KafkaJS has no assign()) for seek/replay and pause/resume.
// {bootstrap, topic, group, mode: 'seek' | 'pause'} -> {events: [...]} for the Python test.
'use strict'
const { makeKafka, toMessage, main } = require('./core_lib')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor(predicate, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

main(async ({ bootstrap, topic, group, mode }) => {
  const kafka = makeKafka(bootstrap)
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: mode === 'pause' ? 3 : 1 }], waitForLeaders: true })
  await admin.disconnect()

  const producer = kafka.producer()
  await producer.connect()
  const fill = async (partitions, start, n) => {
    const messages = []
    for (const partition of partitions) {
      for (let i = start; i < start + n; i++) {
        messages.push(toMessage({ key: null, value: Buffer.from(`p${partition}-${i}`).toString('hex'), partition }))
      }
    }
    await producer.send({ topic, messages })
  }

  const consumer = kafka.consumer({
    groupId: group,
    maxWaitTimeInMs: 100,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
  })
  const seen = []
  const events = []
  try {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: Number(message.offset), value: message.value.toString() })
      },
    })

    if (mode === 'seek') {
      await fill([0], 0, 20)
      await waitFor(() => seen.length >= 20, 'first pass')
      events.push({ pass: 'first', offsets: seen.splice(0).map(m => m.offset) })
      consumer.seek({ topic, partition: 0, offset: '5' })
      await waitFor(() => seen.length >= 15, 'after seek to 5')
      await sleep(300)
      events.push({ pass: 'seek5', offsets: seen.splice(0).map(m => m.offset) })
      consumer.seek({ topic, partition: 0, offset: '0' })
      await waitFor(() => seen.length >= 20, 'replay')
      await sleep(300)
      events.push({ pass: 'replay', offsets: seen.splice(0).map(m => m.offset) })
    } else {
      await fill([0, 1, 2], 0, 5)
      await waitFor(() => seen.length >= 15, 'first 15')
      events.push({ phase: 'start', messages: seen.splice(0) })
      consumer.pause([{ topic, partitions: [1] }])
      await fill([0, 1, 2], 5, 5)
      await waitFor(() => seen.length >= 10, 'partitions 0 and 2 while 1 is paused')
      await sleep(1000)
      events.push({ phase: 'paused', messages: seen.splice(0) })
      consumer.resume([{ topic, partitions: [1] }])
      await waitFor(() => seen.length >= 5, 'partition 1 after resume')
      await sleep(300)
      events.push({ phase: 'resumed', messages: seen.splice(0) })
    }
    return { events }
  } finally {
    await consumer.disconnect()
    await producer.disconnect()
  }
})
