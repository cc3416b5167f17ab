// Shared helpers of the KafkaJS core scenarios (tests/interop/test_core_kafkajs.py).
//
// Each core_*.js script reads one JSON object on stdin and prints one JSON line as its result. Bytes
// travel as hex strings, null as null.
//
// Codecs: KafkaJS ships only gzip. Snappy comes from kafkajs-snappy, LZ4 is a small codec around
// lz4js (LZ4 frame format, as Kafka uses), ZSTD one around zstd-codec (WebAssembly): all pure
// JS/wasm, nothing compiled at install time.

'use strict'

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4js')
const { ZstdCodec } = require('zstd-codec')

const LZ4Codec = () => ({
  async compress(encoder) {
    return Buffer.from(lz4.compress(encoder.buffer))
  },
  async decompress(buffer) {
    return Buffer.from(lz4.decompress(buffer))
  },
})

let zstdStreaming = null
const zstdReady = new Promise(resolve =>
  ZstdCodec.run(zstd => {
    zstdStreaming = new zstd.Streaming()
    resolve()
  })
)

const ZstdCodecForKafka = () => ({
  async compress(encoder) {
    await zstdReady
    return Buffer.from(zstdStreaming.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    await zstdReady
    // Streaming decompression: frames written by librdkafka/Java need not carry a content size.
    return Buffer.from(zstdStreaming.decompress(buffer))
  },
})

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = LZ4Codec
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodecForKafka

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// The JSON argument comes on stdin (command lines are limited to 128 KiB per argument).
function args() {
  const text = require('fs').readFileSync(0, 'utf8')
  return JSON.parse(text || '{}')
}

function makeKafka(bootstrap) {
  return new Kafka({
    clientId: 'klamm-interop',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  })
}

const hex = b => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'))
const unhex = s => (s === null || s === undefined ? null : Buffer.from(s, 'hex'))

// JSON record {key, value, headers: [[name, hex]]} -> KafkaJS message. KafkaJS takes headers as
// an object; a repeated name becomes an array of values (sent as repeated headers, in order).
function toMessage(r) {
  const message = { key: unhex(r.key), value: unhex(r.value) }
  if (r.headers && r.headers.length) {
    const headers = {}
    for (const [name, value] of r.headers) {
      const v = unhex(value)
      if (name in headers) {
        headers[name] = [].concat(headers[name], [v])
      } else {
        headers[name] = v
      }
    }
    message.headers = headers
  }
  if (r.timestamp !== undefined && r.timestamp !== null) message.timestamp = String(r.timestamp)
  if (r.partition !== undefined && r.partition !== null) message.partition = r.partition
  return message
}

// KafkaJS message -> JSON record (headers flattened back to [[name, hex]] in order).
function fromMessage(m) {
  const headers = []
  for (const [name, value] of Object.entries(m.headers || {})) {
    for (const v of [].concat(value)) headers.push([name, hex(v)])
  }
  return {
    offset: Number(m.offset),
    timestamp: Number(m.timestamp),
    key: hex(m.key),
    value: hex(m.value),
    headers,
  }
}

// An assign()-style reader: KafkaJS's consumer API is group-only, so this goes through its
// cluster/broker layer (the same Fetch request, record-batch decoder and codecs the consumer uses)
// and reads one partition from an explicit offset.
async function withCluster(kafka, fn) {
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = kafka[sym]({ allowAutoTopicCreation: false })
  await cluster.connect()
  try {
    return await fn(cluster)
  } finally {
    await cluster.disconnect()
  }
}

async function fetchFrom(cluster, topic, partition, offset, count, timeoutMs = 15000) {
  await cluster.addTargetTopic(topic)
  const leaders = cluster.findLeaderForPartitions(topic, [partition])
  const nodeId = Object.keys(leaders)[0]
  const broker = await cluster.findBroker({ nodeId })
  const out = []
  let next = offset
  const deadline = Date.now() + timeoutMs
  while (out.length < count && Date.now() < deadline) {
    const response = await broker.fetch({
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 10485760,
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(next), maxBytes: 1048576 }] }],
    })
    for (const t of response.responses) {
      for (const p of t.partitions) {
        if (p.errorCode) throw new Error(`fetch error ${p.errorCode} on ${topic}-${partition}`)
        for (const m of p.messages) {
          // Whole batches come back: skip records before the fetch offset, and control records.
          if (Number(m.offset) < next || m.isControlRecord) continue
          out.push(fromMessage(m))
          next = Number(m.offset) + 1
        }
      }
    }
  }
  return out
}

function main(fn) {
  fn(args())
    .then(result => {
      // Exit only once the (possibly large) line has been written to the pipe.
      process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
    })
    .catch(err => {
      process.stderr.write(`${err && err.stack ? err.stack : err}\n`)
      process.exit(1)
    })
}

module.exports = { COMPRESSION, makeKafka, toMessage, fromMessage, withCluster, fetchFrom, main, hex, unhex }
