// One kafkajs operation over a secured listener for lib/sec_client.py: argv[2] is the JSON spec
// (client, action, bootstrap, sec, topic, values, group, count, deadline_s); prints one JSON line
// {"ok", "result", "error"}. Errors are kafkajs' own: error class name, its `type` (the Kafka
// error code name for protocol errors) and message, and the cause chain for connection errors.
const fs = require('fs');
const path = require('path');
const { Kafka, logLevel } = require(path.join(process.env.GREGOR_NODE_MODULES, 'kafkajs'));

const spec = JSON.parse(process.argv[2]);
const sec = spec.sec || {};
const deadlineMs = (spec.deadline_s || 30) * 1000;
const logged = [];

function emit(ok, result, error) {
  console.log(JSON.stringify({ ok, result: result === undefined ? null : result, error: error || null }));
  process.exit(0);
}

function describe(e) {
  const parts = [];
  for (let x = e, depth = 0; x && depth < 4; x = x.cause || x.originalError, depth++) {
    parts.push(`${x.name || 'Error'}${x.type ? ` [${x.type}]` : ''}: ${x.message}`);
  }
  const tail = logged.slice(-3);
  return parts.join(' <- ') + (tail.length ? ` | log: ${tail.join(' || ')}` : '');
}

const config = {
  clientId: 'gregor-compat-sec',
  brokers: [spec.bootstrap],
  connectionTimeout: 5000,
  authenticationTimeout: 5000,
  requestTimeout: Math.max(5000, deadlineMs / 2),
  retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
  logLevel: logLevel.ERROR,
  // The log carries reasons an exception may leave out (e.g. the TLS alert); keep them.
  logCreator: () => ({ level, log }) => {
    if (level <= logLevel.ERROR) logged.push(`${log.message}${log.error ? `: ${log.error}` : ''}`);
  },
};
if ((sec.protocol || '').includes('SSL')) {
  config.ssl = { rejectUnauthorized: true };
  if (sec.ca) config.ssl.ca = [fs.readFileSync(sec.ca, 'utf8')];
  if (sec.cert) config.ssl.cert = fs.readFileSync(sec.cert, 'utf8');
  if (sec.key) config.ssl.key = fs.readFileSync(sec.key, 'utf8');
}
if ((sec.protocol || '').startsWith('SASL')) {
  config.sasl = { mechanism: sec.mechanism.toLowerCase(), username: sec.user, password: sec.password };
}
const kafka = new Kafka(config);

async function produce() {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: !!spec.idempotent });
  await producer.connect();
  try {
    await producer.send({ topic: spec.topic, acks: -1, messages: spec.values.map((value) => ({ value })) });
  } finally {
    await producer.disconnect();
  }
  return spec.values.length;
}

async function consume() {
  const consumer = kafka.consumer({ groupId: spec.group, sessionTimeout: 10000, retry: { retries: 0 } });
  await consumer.connect();
  const got = [];
  try {
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${spec.count} values in time`)), deadlineMs);
      // A failure inside the group protocol (e.g. GROUP_AUTHORIZATION_FAILED) stops the consumer
      // with a CRASH event instead of rejecting run().
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        clearTimeout(timer);
        reject(payload.error);
      });
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          got.push(message.value.toString());
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
          if (got.length >= spec.count) {
            clearTimeout(timer);
            resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

async function topics() {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).sort();
  } finally {
    await admin.disconnect();
  }
}

const actions = { produce, consume, topics };
setTimeout(() => emit(false, null, `kafkajs: no answer within ${deadlineMs} ms | log: ${logged.slice(-3).join(' || ')}`), deadlineMs + 2000).unref();
actions[spec.action]().then((r) => emit(true, r)).catch((e) => emit(false, null, describe(e)));
