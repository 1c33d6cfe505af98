// What the KafkaJS scenarios share: a quiet client with short, bounded retries, the codecs that
// install on this machine, and one JSON object on stdout per run (exit 1 on an unexpected failure).
'use strict'

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')

const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
  CODECS.snappy = CompressionTypes.Snappy
} catch (e) { /* not installed: the scenario reports the codec as unavailable */ }
try {
  const LZ4 = require('kafkajs-lz4')
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4().codec
  CODECS.lz4 = CompressionTypes.LZ4
} catch (e) { /* as above */ }
// zstd: @kafkajs/zstd needs the native cppzst 2.0.6, which does not compile against Node 20's headers.

function client (bootstrap, clientId = 'conformance-kafkajs') {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  })
}

// A KafkaJS error as data: its class, Kafka error type and code, whether KafkaJS would retry it.
function errorInfo (e) {
  if (e && Array.isArray(e.errors) && e.errors.length) return { ...errorInfo(e.errors[0]), name: e.name, count: e.errors.length }
  const cause = e && e.cause && e.cause.type ? e.cause : e
  return { name: e.name, type: cause.type || null, code: cause.code === undefined ? null : cause.code,
    retriable: cause.retriable === undefined ? null : cause.retriable, message: e.message }
}

// Records arrive as JSON on stdin: [{partition, key, value, headers: [[name, value]...], timestamp}]
// with null keys and values kept null; headers with a repeated name become KafkaJS's array form.
async function readRecords () {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const text = Buffer.concat(chunks).toString()
  return text.trim() ? JSON.parse(text) : []
}

function toMessage (r) {
  const headers = {}
  for (const [name, value] of r.headers || []) {
    if (name in headers) headers[name] = [].concat(headers[name], value)
    else headers[name] = value
  }
  const m = { partition: r.partition, key: r.key, value: r.value, headers }
  if (r.timestamp !== null && r.timestamp !== undefined) m.timestamp = String(r.timestamp)
  return m
}

// Run `main` and print its result; an exception prints {ok: false, error} and exits 1.
function run (main) {
  const watchdog = setTimeout(() => { emit({ ok: false, error: { message: 'scenario timed out' } }, 1) }, 45000)
  main().then(
    (result) => { clearTimeout(watchdog); emit({ ok: true, ...result }, 0) },
    (e) => { clearTimeout(watchdog); emit({ ok: false, error: errorInfo(e) }, 1) })
}

function emit (obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n', () => process.exit(code))
}

module.exports = { client, CODECS, errorInfo, readRecords, toMessage, run }
