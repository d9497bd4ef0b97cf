// kafkajs (pure JavaScript client) against gregor: admin create, produce 300 keyed messages
// with headers (acks=all) plus a gzip batch, consume them as a group, and check every message
// arrives exactly once with its key, value and header, and that the group's committed offsets
// reach the end of every partition. Exit status 0 only when every check held.
const path = require('path');
const kjs = require(path.join(process.env.GREGOR_NODE_MODULES, 'kafkajs'));
const { Kafka, CompressionTypes, logLevel } = kjs;

const suffix = Math.random().toString(16).slice(2, 10);
const topic = `kafkajs-${suffix}`;
const groupId = `kafkajs-group-${suffix}`;
const kafka = new Kafka({ clientId: 'gregor-compat', brokers: [process.env.BOOTSTRAP], logLevel: logLevel.ERROR });

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

(async () => {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  if (!created) fail('createTopics reported the topic as existing');

  const producer = kafka.producer({ createPartitioner: kjs.Partitioners.DefaultPartitioner });
  await producer.connect();
  const want = new Map();
  const messages = [];
  for (let i = 0; i < 300; i++) {
    const m = { key: `k${i}`, value: `value-${i}`, headers: { h: `x${i}` } };
    messages.push(m);
    want.set(m.key, m);
  }
  await producer.send({ topic, messages, acks: -1 });
  const gz = { key: 'gz', value: 'compressed', headers: { h: 'gzip' } };
  await producer.send({ topic, messages: [gz], acks: -1, compression: CompressionTypes.GZIP });
  want.set(gz.key, gz);

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  await new Promise((resolve) => {
    const timer = setTimeout(() => fail(`only ${seen.size} of ${want.size} messages within 30 s`), 30000);
    consumer.run({
      eachMessage: async ({ message }) => {
        const key = message.key.toString();
        if (seen.has(key)) fail(`message ${key} delivered twice`);
        seen.set(key, message);
        if (seen.size === want.size) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  for (const [key, m] of want) {
    const got = seen.get(key);
    if (!got) fail(`message ${key} missing`);
    if (got.value.toString() !== m.value) fail(`value of ${key}: ${got.value}`);
    if (!got.headers.h || got.headers.h.toString() !== m.headers.h) fail(`header of ${key}`);
  }
  await consumer.disconnect(); // commits what was consumed

  const ends = await admin.fetchTopicOffsets(topic);
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  const byPartition = new Map(committed[0].partitions.map((p) => [p.partition, p.offset]));
  for (const e of ends) {
    if (byPartition.get(e.partition) !== e.high) {
      fail(`partition ${e.partition}: committed ${byPartition.get(e.partition)}, end ${e.high}`);
    }
  }
  const groups = await admin.listGroups();
  if (!groups.groups.some((g) => g.groupId === groupId)) fail('listGroups does not show the group');
  await producer.disconnect();
  await admin.disconnect();
  console.log(`ok: ${want.size} messages, committed offsets at the end of all 3 partitions`);
})().catch((e) => fail(e.stack || String(e)));
