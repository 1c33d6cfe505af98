// KafkaJS over SASL_SSL: `node secure.js BOOTSTRAP CA_FILE MECHANISM USER PASSWORD TOPIC` creates
// the topic (admin), produces three records, reads them back in a consumer group, and prints
// {"topics": [...], "values": [...]}; a failed authentication prints {"error": {...}}.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')
const { errorInfo } = require('./lib')

async function main () {
  const [bootstrap, ca, mechanism, username, password, topic] = process.argv.slice(2)
  const kafka = new Kafka({
    clientId: 'conformance-kafkajs-secure', brokers: [bootstrap], logLevel: logLevel.NOTHING,
    ssl: { ca: [fs.readFileSync(ca, 'utf-8')] },
    sasl: { mechanism: mechanism.toLowerCase(), username, password },
    connectionTimeout: 5000, requestTimeout: 10000, retry: { retries: 2, initialRetryTime: 100 },
  })
  const admin = kafka.admin()
  try {
    await admin.connect()
  } catch (e) {
    console.log(JSON.stringify({ error: errorInfo(e) }))
    return
  }
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const topics = await admin.listTopics()
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: ['a', 'b', 'c'].map(value => ({ value })) })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: topic })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out reading')), 30000)
    consumer.run({ eachMessage: async ({ message }) => {
      values.push(message.value.toString())
      if (values.length === 3) { clearTimeout(timer); resolve() }
    } })
  })
  await consumer.disconnect()
  console.log(JSON.stringify({ topics, values }))
}

main().catch(e => { console.log(JSON.stringify({ error: errorInfo(e) })); process.exit(1) })
