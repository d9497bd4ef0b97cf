// kafkajs: a transactional producer (transactionalId, idempotent, maxInFlightRequests 1) on a
// 2-partition topic. txn 1 sends 10 records plus sendOffsets(group, input p0 -> 5) and commits;
// txn 2 sends 6 records plus sendOffsets(input p0 -> 9) and aborts; txn 3 sends 4 records and
// commits. A read_committed consumer (readUncommitted: false, kafkajs' default) gets exactly the 14
// committed values in order per partition and none of the aborted ones (txn 3's records come
// after txn 2's in each partition, so reaching them means the aborted ones were passed over);
// a read_uncommitted consumer gets all 20. admin.fetchOffsets shows the group at 5: the
// offset sent in the aborted transaction never becomes visible. Exit status 0 only when every
// check held.
const path = require('path');
const kjs = require(path.join(process.env.GREGOR_NODE_MODULES, 'kafkajs'));
const { Kafka, logLevel } = kjs;

const suffix = Math.random().toString(16).slice(2, 10);
const topic = `kafkajs-txn-${suffix}`;
const inTopic = `kafkajs-txn-in-${suffix}`;
const groupId = `kafkajs-txn-group-${suffix}`;
const kafka = new Kafka({ clientId: 'gregor-compat', brokers: [process.env.BOOTSTRAP], logLevel: logLevel.ERROR });

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

function sameLists(got, want) {
  return JSON.stringify(got) === JSON.stringify(want);
}

// Reads the topic from the beginning with a fresh group (kafka.consumer's readUncommitted:
// false = isolation level read_committed, true = read_uncommitted) until every partition holds the
// wanted values (`want`: partition -> [values]), or fails after 30 s. Returns what it got.
async function readUntil(readUncommitted, want, what) {
  const consumer = kafka.consumer({ groupId: `kafkajs-txn-read-${what}-${suffix}`, readUncommitted, sessionTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = { 0: [], 1: [] };
  const done = () => [0, 1].every((p) => got[p].length >= want[p].length);
  await new Promise((resolve) => {
    const timer = setTimeout(() => fail(`${what}: got ${JSON.stringify(got)} within 30 s, want ${JSON.stringify(want)}`), 30000);
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got[partition].push(message.value.toString());
        if (done()) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return got;
}

(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }, { topic: inTopic, numPartitions: 1 }], waitForLeaders: true });

  const producer = kafka.producer({ transactionalId: `kafkajs-txn-${suffix}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const committed = { 0: [], 1: [] };
  const everything = { 0: [], 1: [] };
  const plan = [
    { name: 'c1', n: 10, commit: true, offset: '5' },
    { name: 'a2', n: 6, commit: false, offset: '9' },
    { name: 'c3', n: 4, commit: true },
  ];
  for (const { name, n, commit, offset } of plan) {
    const txn = await producer.transaction();
    const messages = Array.from({ length: n }, (_, i) => ({ value: `${name}-${i}`, partition: i % 2 }));
    await txn.send({ topic, messages, acks: -1 });
    if (offset !== undefined) {
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: inTopic, partitions: [{ partition: 0, offset }] }] });
    }
    if (commit) await txn.commit();
    else await txn.abort();
    for (const m of messages) {
      everything[m.partition].push(m.value);
      if (commit) committed[m.partition].push(m.value);
    }
  }
  await producer.disconnect();

  const rc = await readUntil(false, committed, 'read_committed');
  if (!sameLists(rc, committed)) fail(`read_committed got ${JSON.stringify(rc)}, want ${JSON.stringify(committed)}`);
  const ru = await readUntil(true, everything, 'read_uncommitted');
  if (!sameLists(ru, everything)) fail(`read_uncommitted got ${JSON.stringify(ru)}, want ${JSON.stringify(everything)}`);

  const offsets = await admin.fetchOffsets({ groupId, topics: [inTopic] });
  const p0 = offsets.length === 1 ? offsets[0].partitions.find((p) => p.partition === 0) : undefined;
  if (!p0 || p0.offset !== '5') fail(`fetchOffsets after sendOffsets: ${JSON.stringify(offsets)}, want ${inTopic} p0 at 5`);

  const ends = await admin.fetchTopicOffsets(topic);
  for (const p of [0, 1]) {
    const o = ends.find((e) => e.partition === p);
    const want = String(everything[p].length + plan.length);  // records + one marker per transaction
    if (!o || o.high !== want) fail(`partition ${p} offsets ${JSON.stringify(o)}, want high ${want}`);
  }
  await admin.disconnect();
  console.log('ok: read_committed saw only committed records, read_uncommitted all, group offset 5 from the committed transaction');
})().catch((e) => fail(e.stack || String(e)));
