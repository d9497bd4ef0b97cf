// kafkajs: admin.deleteTopicRecords purges partition 0 up to offset 4 and partition 1 up to
// its end (offset -1); fetchTopicOffsets then reports low watermarks 4 and 5. Exit status 0
// only when every check held.
const path = require('path');
const kjs = require(path.join(process.env.GREGOR_NODE_MODULES, 'kafkajs'));
const { Kafka, logLevel } = kjs;

const topic = `kafkajs-purge-${Math.random().toString(16).slice(2, 10)}`;
const kafka = new Kafka({ clientId: 'gregor-compat', brokers: [process.env.BOOTSTRAP], logLevel: logLevel.ERROR });

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  for (const [partition, n] of [[0, 10], [1, 5]]) {
    const messages = Array.from({ length: n }, (_, i) => ({ value: `v${i}`, partition }));
    await producer.send({ topic, messages, acks: -1 });
  }
  // The admin client looks leaders up in metadata it already holds: fetch the topic's first.
  await admin.fetchTopicOffsets(topic);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }, { partition: 1, offset: '-1' }] });
  const offsets = await admin.fetchTopicOffsets(topic);
  const byPartition = new Map(offsets.map((o) => [o.partition, o]));
  for (const [partition, low, high] of [[0, '4', '10'], [1, '5', '5']]) {
    const o = byPartition.get(partition);
    if (!o || o.low !== low || o.high !== high) fail(`partition ${partition}: ${JSON.stringify(o)}, want low ${low} high ${high}`);
  }
  await producer.disconnect();
  await admin.disconnect();
  console.log('ok: low watermarks 4 and 5 after deleteTopicRecords');
})().catch((e) => fail(e.stack || String(e)));
