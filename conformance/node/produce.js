// node produce.js BOOTSTRAP TOPIC [--codec=none|gzip|snappy|lz4] [--acks=-1|1|0] [--idempotent] [--chunk=N]
// Sends the records given as JSON on stdin, N per send() call (all in one call by default), and
// prints what the broker acknowledged for each call.
'use strict'

const { client, CODECS, readRecords, toMessage, run } = require('./lib')

const [bootstrap, topic, ...flags] = process.argv.slice(2)
const opt = Object.fromEntries(flags.map((f) => { const [k, v] = f.replace(/^--/, '').split('='); return [k, v ?? true] }))

run(async () => {
  const codec = opt.codec || 'none'
  if (!(codec in CODECS)) throw new Error(`codec ${codec} is not available to KafkaJS here`)
  const records = await readRecords()
  const producer = client(bootstrap).producer({ idempotent: !!opt.idempotent, allowAutoTopicCreation: true,
    maxInFlightRequests: opt.idempotent ? 1 : undefined })
  await producer.connect()
  try {
    const chunk = Number(opt.chunk || records.length || 1)
    const acks = []
    for (let i = 0; i < records.length; i += chunk) {
      const result = await producer.send({
        topic, acks: Number(opt.acks ?? -1), timeout: 10000, compression: CODECS[codec],
        messages: records.slice(i, i + chunk).map(toMessage),
      })
      acks.push(result.map((r) => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: Number(r.baseOffset) }))
        .sort((a, b) => a.partition - b.partition))
    }
    return { topic, codec, acks }
  } finally {
    await producer.disconnect()
  }
})
