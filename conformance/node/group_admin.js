// node group_admin.js BOOTSTRAP TOPIC ACTIVE STOPPED NEVER
// node group_admin.js BOOTSTRAP TOPIC --delete GROUP...
// The KafkaJS admin client on consumer groups; prints what it saw at every step. The first form
// expects ACTIVE to be running (conformance/test_kafkajs_group_admin.py starts its members), makes
// STOPPED a stopped group (a consumer that reads the topic's 40 records, commits offsets with
// metadata and disconnects), then lists, describes, computes lag, sets offsets and deletes groups.
// The second form deletes groups and lists what is left.
'use strict'

const { AssignerProtocol } = require('kafkajs')
const { client, errorInfo, run } = require('./lib')

const [bootstrap, topic, ...rest] = process.argv.slice(2)
const STOPPED_AT = { 0: 3, 1: 10, 2: 0, 3: 7 }

async function attempt (fn) {
  try { return { value: await fn() } } catch (e) { return { error: errorInfo(e) } }
}

// deleteGroups resolves with every group's result, or throws with the failed ones: either way, as data.
async function deleteGroups (admin, groups) {
  try {
    return { results: (await admin.deleteGroups(groups)).map((r) => ({ groupId: r.groupId, errorCode: r.errorCode })) }
  } catch (e) {
    if (!Array.isArray(e.groups)) throw e
    return { failed: e.groups.map((r) => ({ groupId: r.groupId, errorCode: r.errorCode, type: r.error && r.error.type })) }
  }
}

async function stopAfterCommitting (kafka, groupId) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 100 })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let got = 0
    let done
    const all = new Promise((resolve) => { done = resolve })
    await consumer.run({ autoCommit: false, eachMessage: async () => { if (++got === 40) done() } })
    await all
    await consumer.commitOffsets(Object.entries(STOPPED_AT).map(([partition, offset]) =>
      ({ topic, partition: Number(partition), offset: String(offset), metadata: `at-${offset}` })))
  } finally {
    await consumer.disconnect()
  }
}

run(async () => {
  const kafka = client(bootstrap, 'kjs-gadmin')
  const admin = kafka.admin()
  await admin.connect()
  const listed = async () => Object.fromEntries((await admin.listGroups()).groups.map((g) => [g.groupId, g.protocolType]))
  try {
    if (rest[0] === '--delete') {
      const groups = rest.slice(1)
      return { deleted: await deleteGroups(admin, groups), listed: await listed() }
    }
    const [active, stopped, never] = rest
    await stopAfterCommitting(kafka, stopped)
    const out = { listed: await listed() }

    const { groups } = await admin.describeGroups([active, stopped, never])
    out.described = Object.fromEntries(groups.map((g) => [g.groupId, {
      errorCode: g.errorCode, state: g.state, protocolType: g.protocolType, protocol: g.protocol,
      members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, clientHost: m.clientHost,
        assignment: AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment })),
    }]))

    const committed = async (groupId) => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return Object.fromEntries(t.partitions.map((p) => [p.partition, [Number(p.offset), p.metadata]]))
    }
    const lag = async (groupId) => {
      const ends = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]))
      return Object.fromEntries(Object.entries(await committed(groupId)).map(([p, [offset]]) => [p, ends[p] - offset]))
    }
    out.committed = { active: await committed(active), stopped: await committed(stopped) }
    out.lag = { active: await lag(active), stopped: await lag(stopped) }

    const partitions = [{ partition: 0, offset: '5' }]
    out.setStopped = await attempt(() => admin.setOffsets({ groupId: stopped, topic, partitions }))
    out.setActive = await attempt(() => admin.setOffsets({ groupId: active, topic, partitions }))
    out.lagAfterSet = await lag(stopped)

    out.deleted = await deleteGroups(admin, [active, stopped, never])
    out.listedAfterDelete = await listed()
    out.committedAfterDelete = await committed(stopped)
    return out
  } finally {
    await admin.disconnect()
  }
})
