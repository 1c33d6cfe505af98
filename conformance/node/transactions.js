// node transactions.js BOOTSTRAP TOPIC TRANSACTIONAL_ID
// KafkaJS's transactional producer: one transaction of "committed-0..4" committed, one of
// "aborted-0..4" aborted (both sent to partitions 0 and 1 in turn), then the values a
// read_committed consumer (KafkaJS's default isolation) reads back.
'use strict'

const { client, run } = require('./lib')

const [bootstrap, topic, transactionalId] = process.argv.slice(2)

function messages (tag) {
  return [0, 1, 2, 3, 4].map((i) => ({ partition: i % 2, value: `${tag}-${i}` }))
}

run(async () => {
  const kafka = client(bootstrap)
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const committed = await producer.transaction()
    await committed.send({ topic, acks: -1, messages: messages('committed') })
    await committed.commit()
    const aborted = await producer.transaction()
    await aborted.send({ topic, acks: -1, messages: messages('aborted') })
    await aborted.abort()
  } finally {
    await producer.disconnect()
  }
  const consumer = kafka.consumer({ groupId: `reader-${transactionalId}`, readUncommitted: false })
  await consumer.connect()
  const values = []
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise((resolve) => {
      const quiet = () => setTimeout(resolve, 3000)
      let timer = quiet()
      consumer.run({
        eachMessage: async ({ message }) => {
          values.push(message.value.toString())
          clearTimeout(timer)
          timer = quiet()
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return { values: values.sort() }
})
