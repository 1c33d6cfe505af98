// node group_member.js BOOTSTRAP TOPIC GROUP NAME
// One member of a KafkaJS consumer group, for the group scenarios (conformance/groups.py): it
// subscribes to TOPIC and reports, one JSON object a line, {"member": id} and {"assigned": [...]}
// after every join, and {"records": [[partition, offset, value], ...]} for each batch once its
// offsets are committed. SIGTERM disconnects it cleanly (it leaves the group), then {"closed": true}.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [bootstrap, topic, groupId, name] = process.argv.slice(2)

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

async function main () {
  const kafka = new Kafka({ clientId: `kjs-${name}`, brokers: [bootstrap], logLevel: logLevel.NOTHING,
    connectionTimeout: 3000, requestTimeout: 10000, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 } })
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000,
    maxWaitTimeInMs: 100, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 } })
  let stopping = false
  process.on('SIGTERM', async () => {
    if (stopping) return
    stopping = true
    await consumer.disconnect()
    process.stdout.write(JSON.stringify({ closed: true }) + '\n', () => process.exit(0))
  })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    emit({ member: e.payload.memberId })
    emit({ assigned: (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b) })
  })
  consumer.on(consumer.events.CRASH, (e) => {
    emit({ error: `crash: ${e.payload.error && e.payload.error.message}` })
    process.exit(1)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (!batch.messages.length) return
      const last = batch.messages[batch.messages.length - 1]
      await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(last.offset) + 1) }])
      const value = (m) => m.value === null ? null : m.value.toString()
      emit({ records: batch.messages.map((m) => [batch.partition, Number(m.offset), value(m)]) })
    },
  })
}

main().catch((e) => { emit({ error: `${e.name}: ${e.message}` }); process.exit(1) })
