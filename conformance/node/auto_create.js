// node auto_create.js BOOTSTRAP SEND_TO ASK_FOR
// Topic auto-creation as KafkaJS meets it: a producer sending to a missing topic (its metadata
// request allows auto-creation), and the admin asking for a missing topic's metadata (its request
// does not).
'use strict'

const { client, errorInfo, run } = require('./lib')

const [bootstrap, sendTo, askFor] = process.argv.slice(2)

run(async () => {
  const kafka = client(bootstrap)
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  try {
    const before = await admin.listTopics()
    const acks = (await producer.send({ topic: sendTo, acks: -1, messages: [{ key: 'k', value: 'first' }] }))
      .map((r) => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: Number(r.baseOffset) }))
    const created = (await admin.fetchTopicMetadata({ topics: [sendTo] })).topics
      .map((t) => ({ name: t.name, partitions: t.partitions.map((p) => p.partitionId) }))
    let askedError = null
    try { await admin.fetchTopicMetadata({ topics: [askFor] }) } catch (e) { askedError = errorInfo(e) }
    const after = await admin.listTopics()
    return { existedBefore: before.includes(sendTo) || before.includes(askFor), acks, created, askedError,
      listedAfter: { [sendTo]: after.includes(sendTo), [askFor]: after.includes(askFor) } }
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})
