// Parity scenario "describeGroup" (tests/parity/test_consumer_describe_group.py): a running member
// describes its own group. Member ids are random: the record keeps their count and shape.
// Argument: {"brokers", "topic", "group"}.

'use strict'

const { AssignerProtocol } = require('kafkajs')
const { args, kafka, main, snake } = require('./lib')

main(async () => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 2 }] })
  await admin.disconnect()
  const consumer = kafka.consumer({ groupId: args.group, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic })
  await consumer.run({ eachMessage: async () => {} })
  const group = await consumer.describeGroup()
  await consumer.disconnect()
  const [member] = group.members
  const { assignment } = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
  return {
    keys: Object.keys(group).map(snake).sort(),
    state: group.state,
    protocol: group.protocol,
    protocol_type: group.protocolType,
    error_code: group.errorCode,
    members: group.members.length,
    member_keys: Object.keys(member).map(snake).sort(),
    client_id: member.clientId,
    client_host: member.clientHost,
    member_assignment: { T: assignment[args.topic].slice().sort() },
  }
})
