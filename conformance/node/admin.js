// node admin.js BOOTSTRAP TOPIC
// A topic's whole life through the KafkaJS admin client; prints what it saw at every step.
'use strict'

const { ConfigResourceTypes } = require('kafkajs')
const { client, errorInfo, run } = require('./lib')

const [bootstrap, topic] = process.argv.slice(2)

async function attempt (fn) {
  try { return { value: await fn() } } catch (e) { return { error: errorInfo(e) } }
}

run(async () => {
  const admin = client(bootstrap).admin()
  await admin.connect()
  const configsOf = async () => {
    const r = await admin.describeConfigs({ includeSynonyms: false, resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy', 'max.message.bytes'] }] })
    const [res] = r.resources
    return { errorCode: res.errorCode, entries: Object.fromEntries(res.configEntries.map((c) =>
      [c.configName, { value: c.configValue, source: c.configSource, isDefault: c.isDefault, readOnly: c.readOnly }])) }
  }
  const partitionsOf = async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    return md.topics[0].partitions.map((p) => ({ id: p.partitionId, error: p.partitionErrorCode, leader: p.leader,
      replicas: p.replicas, isr: p.isr })).sort((a, b) => a.id - b.id)
  }
  try {
    const out = {}
    out.created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1,
      configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'cleanup.policy', value: 'compact' }] }] })
    out.createdAgain = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    out.badConfig = await attempt(() => admin.createTopics({ topics: [{ topic: topic + '-bad',
      configEntries: [{ name: 'no.such.config', value: '1' }] }] }))
    out.listed = (await admin.listTopics()).includes(topic)
    const cluster = await admin.describeCluster()
    out.cluster = { brokers: cluster.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port })),
      controller: cluster.controller }
    out.partitions = await partitionsOf()
    out.configs = await configsOf()
    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
    out.shrink = await attempt(() => admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }))
    out.partitionsAfterGrowth = (await partitionsOf()).map((p) => p.id)
    const altered = await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC,
      name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }] })
    out.altered = altered.resources.map((r) => ({ errorCode: r.errorCode, name: r.resourceName }))
    out.configsAfterAlter = await configsOf()
    out.deleted = await attempt(() => admin.deleteTopics({ topics: [topic], timeout: 5000 }))
    out.listedAfterDelete = (await admin.listTopics()).includes(topic)
    out.describeDeleted = await attempt(configsOf)
    return out
  } finally {
    await admin.disconnect()
  }
})
