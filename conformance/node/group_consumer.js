// node group_consumer.js BOOTSTRAP TOPIC GROUP
// A KafkaJS group member driven over stdin, one JSON command a line, answering each with one JSON
// line on stdout (conformance/test_kafkajs_group_offsets.py drives it):
//   {"op": "consume", "n": N}            -> {"records": [[partition, offset, value], ...]}: N records,
//                                           plus any that arrive within 300 ms after them
//   {"op": "commit", "offsets": {partition: [offset, metadata]}}  -> {"ok": true}
//   {"op": "committed"}                  -> {"committed": {partition: [offset, metadata]}} (admin fetchOffsets)
//   {"op": "close"}                      -> {"ok": true}, then it exits
// Any failure answers {"error": ...} and exits 1.
'use strict'

const readline = require('readline')
const { client, errorInfo } = require('./lib')

const [bootstrap, topic, groupId] = process.argv.slice(2)
const kafka = client(bootstrap, 'kjs-offsets')
const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000,
  maxWaitTimeInMs: 100, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } })
const admin = kafka.admin()
const buffered = []

function reply (obj) { return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve)) }
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function consume (n) {
  const deadline = Date.now() + 15000
  while (buffered.length < n && Date.now() < deadline) await sleep(50)
  await sleep(300) // nothing more may come
  return buffered.splice(0)
}

const ops = {
  consume: async (cmd) => ({ records: await consume(cmd.n) }),
  commit: async (cmd) => {
    await consumer.commitOffsets(Object.entries(cmd.offsets).map(([partition, [offset, metadata]]) =>
      ({ topic, partition: Number(partition), offset: String(offset), metadata })))
    return { ok: true }
  },
  committed: async () => {
    const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return { committed: Object.fromEntries(t.partitions.map((p) => [p.partition, [Number(p.offset), p.metadata]])) }
  },
  close: async () => {
    await consumer.disconnect()
    await admin.disconnect()
    return { ok: true }
  },
}

async function main () {
  await admin.connect()
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      buffered.push([partition, Number(message.offset), message.value.toString()])
    },
  })
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    const cmd = JSON.parse(line)
    await reply(await ops[cmd.op](cmd))
    if (cmd.op === 'close') process.exit(0)
  }
}

main().catch(async (e) => { await reply({ error: errorInfo(e) }); process.exit(1) })
