// Shared helpers of the parity scenarios (tests/parity/harness.py runs them): the JSON argument,
// a Kafka client against the test broker, waits, and a record printed as the last JSON line.
// KafkaJS is found through NODE_PATH (tests/interop/js/node_modules).

'use strict'

const { Kafka, logLevel } = require('kafkajs')

// The harness passes the scenario's argument as JSON on stdin.
const args = JSON.parse(require('fs').readFileSync(0, 'utf8'))

const kafka = new Kafka({
  clientId: 'klamm-parity',
  brokers: args.brokers,
  logLevel: logLevel.NOTHING,
  // Fast retries: a scenario must not wait out KafkaJS's 30 s default on purpose-made errors.
  retry: { initialRetryTime: 50, retries: 3 },
})

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

// KafkaJS's camelCase as klamm's snake_case: memberAssignment -> member_assignment.
const snake = name => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()

// An event as the record keeps it: its type (consumer.group_join) and sorted payload keys.
const eventType = type => type.split('.').map(snake).join('.')
const payloadKeys = payload => Object.keys(payload || {}).map(snake).sort()

// Run the scenario; print its record (or the error) as one JSON line and exit.
function main(scenario) {
  scenario()
    .then(record => {
      process.stdout.write(JSON.stringify(record) + '\n')
      process.exit(0)
    })
    .catch(error => {
      process.stderr.write(`${error && error.stack}\n`)
      process.exit(1)
    })
}

module.exports = { args, kafka, sleep, waitFor, snake, eventType, payloadKeys, main }
