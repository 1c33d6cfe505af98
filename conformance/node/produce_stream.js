// node produce_stream.js BOOTSTRAP TOPIC PARTITIONS NAME
// An idempotent KafkaJS producer at acks=-1 sending NAME:<n, 9 digits> to partition n % PARTITIONS,
// one record per send(), until stdin closes. Each acknowledged record is one line
// [partition, offset, value] on stdout as it is acknowledged; the last line is {ok, sent, errors}
// (errors: the sends KafkaJS gave up on, after its retries).
// One partition per send: when a send() spans several leaders and one of its requests fails while
// another is still in flight, KafkaJS 2.2.4 retries the unanswered one too and its sequence
// bookkeeping (incremented before a request, decremented when it fails) can hand a later record
// a sequence number already stored: the broker, as Kafka's, answers that as a duplicate.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const { errorInfo } = require('./lib')

const [bootstrap, topic, partitionCount, name] = process.argv.slice(2)
const partitions = Number(partitionCount)
// Retries that outlast a failover: a leader's session (two seconds in the tests) and an election.
const retry = { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 }

let stopping = false
process.stdin.on('end', () => { stopping = true })
process.stdin.resume()

async function main () {
  const kafka = new Kafka({ clientId: `conformance-kafkajs-${name}`, brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING, connectionTimeout: 1000, requestTimeout: 3000, retry })
  // Metadata at most a second old: a request that times out (a leader stopped with SIGSTOP keeps
  // its connection open) makes KafkaJS retry without refreshing it, to the same stopped leader.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry, metadataMaxAge: 1000 })
  await producer.connect()
  let sent = 0
  const errors = []
  try {
    while (!stopping) {
      const message = { partition: sent % partitions, value: `${name}:${String(sent).padStart(9, '0')}` }
      try {
        const [r] = await producer.send({ topic, acks: -1, timeout: 10000, messages: [message] })
        process.stdout.write(JSON.stringify([r.partition, Number(r.baseOffset), message.value]) + '\n')
      } catch (e) {
        errors.push(errorInfo(e))
      }
      sent += 1
    }
  } finally {
    await producer.disconnect()
  }
  return { ok: true, sent, errors }
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0)),
  (e) => process.stdout.write(JSON.stringify({ ok: false, error: errorInfo(e) }) + '\n', () => process.exit(1)))
