// KafkaJS's @kafkajs/confluent-schema-registry against klamm's Schema Registry
// (tests/schema/test_kafkajs_registry.py). Reads {url, subject, avro, json, proto, incompatible,
// foreign, protoFromPython} on stdin; registers each type, encodes and decodes, decodes bytes a Python client
// encoded (`foreign`, hex), and reports the error of an incompatible registration. Prints one
// JSON line.

'use strict'

const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

async function main() {
  const args = JSON.parse(require('fs').readFileSync(0, 'utf8'))
  const registry = new SchemaRegistry({ host: args.url })
  const out = {}

  const avro = await registry.register(
    { type: SchemaType.AVRO, schema: args.avro }, { subject: `${args.subject}-avro` })
  const avroBytes = await registry.encode(avro.id, { id: 'o1', amount: 9.5 })
  out.avro = { id: avro.id, hex: avroBytes.toString('hex'), decoded: await registry.decode(avroBytes) }
  out.latestId = await registry.getLatestSchemaId(`${args.subject}-avro`)

  const json = await registry.register(
    { type: SchemaType.JSON, schema: args.json }, { subject: `${args.subject}-json` })
  const jsonBytes = await registry.encode(json.id, { id: 'j1', amount: 2 })
  out.json = { id: json.id, hex: jsonBytes.toString('hex'), decoded: await registry.decode(jsonBytes) }

  const proto = await registry.register(
    { type: SchemaType.PROTOBUF, schema: args.proto }, { subject: `${args.subject}-proto` })
  const protoBytes = await registry.encode(proto.id, { id: 'p1', amount: 4.5 })
  const protoDecoded = await registry.decode(protoBytes)
  out.proto = { id: proto.id, hex: protoBytes.toString('hex'), decoded: protoDecoded.toJSON() }

  out.foreign = await registry.decode(Buffer.from(args.foreign, 'hex'))

  // A Protobuf schema a Python client registered as a base64 descriptor: served as .proto text.
  const fromPython = await registry.getSchema(args.protoFromPython)
  out.protoFromPython = fromPython.message ? fromPython.message.name : null

  try {
    await registry.register(
      { type: SchemaType.AVRO, schema: args.incompatible }, { subject: `${args.subject}-avro` })
    out.incompatible = 'registered'
  } catch (e) {
    out.incompatible = { name: e.name, message: e.message }
  }
  console.log(JSON.stringify(out))
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
