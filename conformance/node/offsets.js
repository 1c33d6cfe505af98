// node offsets.js BOOTSTRAP TOPIC TS...
// KafkaJS's ListOffsets lookups: earliest/latest per partition (fetchTopicOffsets) and, for each
// timestamp given, the first offset at or after it (fetchTopicOffsetsByTimestamp).
'use strict'

const { client, run } = require('./lib')

const [bootstrap, topic, ...timestamps] = process.argv.slice(2)

run(async () => {
  const admin = client(bootstrap).admin()
  await admin.connect()
  try {
    const bounds = (await admin.fetchTopicOffsets(topic))
      .map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high), offset: Number(p.offset) }))
      .sort((a, b) => a.partition - b.partition)
    const byTimestamp = {}
    for (const ts of timestamps) {
      byTimestamp[ts] = (await admin.fetchTopicOffsetsByTimestamp(topic, Number(ts)))
        .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
        .sort((a, b) => a.partition - b.partition)
    }
    return { bounds, byTimestamp }
  } finally {
    await admin.disconnect()
  }
})
