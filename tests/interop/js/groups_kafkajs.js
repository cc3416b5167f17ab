// Consumer-group scenario of tests/interop/test_groups_kafkajs.py: two KafkaJS consumers split a
// 6-partition topic, describe/offsets via the admin client, one leaves and the other takes all,
// a new consumer resumes from the committed offsets, a second group reads everything.
// Argument (JSON): {"brokers": [...], "topic": str, "group": str}. Prints one JSON line.

'use strict'

const { Kafka, logLevel } = require('kafkajs')

// The runner passes the argument on stdin (older runners: argv[2]).
const args = JSON.parse(process.argv[2] || require('fs').readFileSync(0, 'utf8'))
const kafka = new Kafka({ clientId: 'klamm-groups', brokers: args.brokers, logLevel: logLevel.NOTHING })

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

function member(groupId, sink) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 100 })
  const state = { consumer, assigned: [], joins: 0 }
  consumer.on(consumer.events.GROUP_JOIN, e => {
    state.joins += 1
    state.assigned = (e.payload.memberAssignment[args.topic] || []).slice().sort()
  })
  state.start = async () => {
    await consumer.connect()
    await consumer.subscribe({ topic: args.topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        sink.push([partition, Number(message.offset)])
      },
    })
  }
  return state
}

async function main() {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 6 }] })
  const producer = kafka.producer()
  await producer.connect()
  const send = async tag => {
    const messages = []
    for (let i = 0; i < 6; i++) messages.push({ partition: i, value: `${tag}${i}` })
    await producer.send({ topic: args.topic, messages })
  }
  await send('a')
  await send('b')

  const seen = []
  const a = member(args.group, seen)
  const b = member(args.group, seen)
  const started = Date.now()
  await Promise.all([a.start(), b.start()])
  await waitFor(() => a.assigned.length + b.assigned.length === 6 && a.assigned.length === 3, 'split')
  await waitFor(() => seen.length === 12, '12 messages')
  const splitMs = Date.now() - started
  const split = [a.assigned, b.assigned]

  await sleep(500) // autocommit after eachMessage resolves
  const described = await admin.describeGroups([args.group])
  const g = described.groups[0]
  const offsetsBefore = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })

  await b.consumer.disconnect() // LeaveGroup
  await waitFor(() => a.assigned.length === 6, 'a owns all 6')
  await send('c')
  await waitFor(() => seen.length === 18, '18 messages')
  await sleep(500)
  await a.consumer.disconnect()

  await send('d')
  const resumed = []
  const c = member(args.group, resumed)
  await c.start()
  await waitFor(() => resumed.length >= 6, 'resume')
  await sleep(300)
  await c.consumer.disconnect()

  const other = []
  const d = member(`${args.group}-other`, other)
  await d.start()
  await waitFor(() => other.length === 24, 'second group reads everything')
  await d.consumer.disconnect()

  const groups = await admin.listGroups()
  const offsetsAfter = await admin.fetchOffsets({ groupId: args.group, topics: [args.topic] })
  await producer.disconnect()
  await admin.disconnect()
  console.log(JSON.stringify({
    split,
    splitMs,
    describe: {
      state: g.state,
      protocol: g.protocol,
      members: g.members.length,
      assignmentBytes: g.members.map(m => m.memberAssignment.length),
    },
    offsetsBefore: offsetsBefore[0].partitions.map(p => [p.partition, Number(p.offset)]).sort(),
    seen: seen.length,
    resumed: resumed.map(([p, o]) => o).sort(),
    other: other.length,
    listed: groups.groups.map(x => x.groupId).includes(args.group),
    offsetsAfter: offsetsAfter[0].partitions.map(p => Number(p.offset)),
  }))
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
