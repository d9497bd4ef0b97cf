// kafkajs 2.2.4 admin: partition reassignments (ListPartitionReassignments v0 /
// AlterPartitionReassignments v0), broker configs (DescribeConfigs v2 with and without
// includeSynonyms, legacy AlterConfigs v1 on broker "1") and __consumer_offsets in the topic list
// once a group has committed. kafkajs has no DescribeTopicPartitions, ListConfigResources,
// IncrementalAlterConfigs or include_documentation, cannot cancel a reassignment (replicas must be
// an array), refuses the cluster-default resource name "" locally and does not expose Metadata's
// is_internal flag; those are checked by kp_admin_extra.py / ck_admin_extra.py.
//
// Checks (all of them run; the failures are listed at the end, exit 1 if any):
//   - a 3-partition topic: metadata shows partitions 0..2 led by broker 1, replicas = ISR = [1];
//   - listPartitionReassignments (all, and for the topic) lists nothing; alter to [1] succeeds;
//     to [2] fails with INVALID_REPLICA_ASSIGNMENT for that partition; on an unknown topic with
//     UNKNOWN_TOPIC_OR_PARTITION; nothing is listed afterwards;
//   - describeConfigs(BROKER "1"): log.retention.ms and log.cleaner.backoff.ms are not read-only,
//     come from the static config or the default, no synonyms unless asked; with includeSynonyms
//     log.retention.ms has synonyms, the first with the entry's own source, a static/default one
//     among them, all from the retention family;
//   - alterConfigs(BROKER "1", log.retention.ms) -> DYNAMIC_BROKER_CONFIG with the first synonym
//     the per-broker value; alterConfigs with no entries (AlterConfigs replaces the whole dynamic
//     set) -> the original value and source again;
//   - a consumer group commits after reading one message; fetchOffsets shows 1; listTopics then
//     includes __consumer_offsets and its metadata shows led partitions.
const path = require('path');
const kjs = require(path.join(process.env.GREGOR_NODE_MODULES, 'kafkajs'));
const { Kafka, logLevel, ConfigResourceTypes, ConfigSource } = kjs;

const suffix = `${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
const topic = `compat-kafkajs-admx-${suffix}`;
const missing = `compat-kafkajs-admx-never-created-${suffix}`;
const groupId = `compat-kafkajs-admx-${suffix}`;
const kafka = new Kafka({
  clientId: 'gregor-compat',
  brokers: [process.env.BOOTSTRAP],
  logLevel: logLevel.NOTHING,
  requestTimeout: 15000,
  retry: { retries: 2 },
});
const BROKER = '1';
const STATIC_OR_DEFAULT = [ConfigSource.STATIC_BROKER_CONFIG, ConfigSource.DEFAULT_CONFIG];
const RETENTION_FAMILY = ['log.retention.ms', 'log.retention.minutes', 'log.retention.hours'];
const RETENTION_1 = '315360000000'; // 10 years: nothing on the broker expires because of it

const failures = [];
let passed = 0;
function check(ok, msg) {
  if (ok) passed += 1;
  else failures.push(msg);
  return ok;
}
function equal(got, want, what) {
  return check(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
async function section(name, fn) {
  const before = failures.length;
  try {
    await withDeadline(fn(), 40000, name);
  } catch (e) {
    failures.push(`${name}: ${e.name || 'Error'}${e.type ? ` ${e.type}` : ''}: ${e.message}`);
  }
  const failed = failures.length - before;
  console.log(`${name}: ${failed ? `${failed} failed check(s)` : 'ok'}`);
}
// The per-partition error types of a rejected alterPartitionReassignments.
function reassignmentErrors(e) {
  const errors = e.errors || [e];
  return errors.map((x) => [x.topic, x.partition, x.type]);
}

(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });

  await section('metadata', async () => {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const parts = md.topics[0].partitions
      .map((p) => [p.partitionId, p.leader, p.replicas, p.isr])
      .sort((a, b) => a[0] - b[0]);
    equal(parts, [[0, 1, [1], [1]], [1, 1, [1], [1]], [2, 1, [1], [1]]], `${topic}: partitions (id, leader, replicas, isr)`);
  });

  await section('partition reassignments', async () => {
    const all = await admin.listPartitionReassignments({});
    equal(all.topics, [], 'listPartitionReassignments (all)');
    const mine = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [0, 1, 2] }] });
    equal(mine.topics.flatMap((t) => t.partitions), [], `listPartitionReassignments(${topic})`);

    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [1] }] }] });
    check(true, 'alter to the current replicas');
    const cases = [
      [topic, 1, [2], 'INVALID_REPLICA_ASSIGNMENT', 'alter to unknown broker [2]'],
      [missing, 0, [1], 'UNKNOWN_TOPIC_OR_PARTITION', 'alter on an unknown topic'],
    ];
    for (const [t, partition, replicas, type, what] of cases) {
      try {
        await admin.alterPartitionReassignments({ topics: [{ topic: t, partitionAssignment: [{ partition, replicas }] }] });
        failures.push(`alterPartitionReassignments: ${what}: succeeded, want ${type}`);
      } catch (e) {
        equal(reassignmentErrors(e), [[t, partition, type]], `alterPartitionReassignments: ${what} (${e.name}: ${e.message})`);
      }
    }
    const after = await admin.listPartitionReassignments({});
    equal(after.topics, [], 'listPartitionReassignments afterwards');
  });

  const describeBroker = async (includeSynonyms, configNames) => {
    const res = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.BROKER, name: BROKER, configNames }],
      includeSynonyms,
    });
    const r = res.resources[0];
    if (r.errorCode !== 0) throw new Error(`describeConfigs BROKER 1: error ${r.errorCode} ${r.errorMessage}`);
    return new Map(r.configEntries.map((e) => [e.configName, e]));
  };
  const valueSource = (e) => (e ? [e.configValue, e.configSource] : null);
  const synonyms = (e) => (e ? e.configSynonyms.map((s) => [s.configName, s.configValue, s.configSource]) : []);
  const alterBroker = async (entries) => {
    const res = await admin.alterConfigs({
      resources: [{ type: ConfigResourceTypes.BROKER, name: BROKER, configEntries: entries }],
    });
    return res.resources.map((r) => [r.resourceName, r.errorCode, r.errorMessage]);
  };

  const baseline = new Map();
  await section('broker configs', async () => {
    const plain = await describeBroker(false);
    for (const key of ['log.retention.ms', 'log.cleaner.backoff.ms']) {
      const e = plain.get(key);
      if (!check(e !== undefined, `describeConfigs(broker 1) has ${key} (${plain.size} configs)`)) continue;
      equal(e.readOnly, false, `${key} readOnly (dynamically updatable in Kafka)`);
      check(STATIC_OR_DEFAULT.includes(e.configSource), `${key} source before any change: ${e.configSource}, want 4 or 5`);
      check(/^-?\d+$/.test(e.configValue || ''), `${key} value ${JSON.stringify(e.configValue)}`);
      equal(synonyms(e), [], `${key} synonyms when includeSynonyms is false`);
      baseline.set(key, valueSource(e));
    }
    const e = (await describeBroker(true, ['log.retention.ms'])).get('log.retention.ms');
    const s = synonyms(e);
    console.log(`log.retention.ms: ${JSON.stringify(valueSource(e))} synonyms ${JSON.stringify(s)}`);
    if (check(s.length > 0, 'log.retention.ms has synonyms when includeSynonyms is true')) {
      equal(s[0][2], e.configSource, "log.retention.ms: first synonym's source = entry source");
      check(s.some(([, , src]) => STATIC_OR_DEFAULT.includes(src)), `log.retention.ms: a static or default synonym: ${JSON.stringify(s)}`);
      check(s.every(([n]) => RETENTION_FAMILY.includes(n)), `log.retention.ms synonyms are retention settings: ${JSON.stringify(s)}`);
    }
  });

  try {
    await section('dynamic broker configs', async () => {
      if (!baseline.has('log.retention.ms')) throw new Error('skipped: no baseline for log.retention.ms');
      equal(await alterBroker([{ name: 'log.retention.ms', value: RETENTION_1 }]), [[BROKER, 0, null]], 'alterConfigs SET on broker 1');
      let e = (await describeBroker(true, ['log.retention.ms'])).get('log.retention.ms');
      equal(valueSource(e), [RETENTION_1, ConfigSource.DYNAMIC_BROKER_CONFIG], 'log.retention.ms after alterConfigs on broker 1');
      equal(synonyms(e)[0] || null, ['log.retention.ms', RETENTION_1, ConfigSource.DYNAMIC_BROKER_CONFIG], 'log.retention.ms first synonym');
      check(synonyms(e).slice(1).some(([, , src]) => STATIC_OR_DEFAULT.includes(src)),
        `log.retention.ms: the static/default synonym stays behind it: ${JSON.stringify(synonyms(e))}`);

      equal(await alterBroker([]), [[BROKER, 0, null]], 'alterConfigs on broker 1 with no entries');
      e = (await describeBroker(false, ['log.retention.ms'])).get('log.retention.ms');
      equal(valueSource(e), baseline.get('log.retention.ms'), 'log.retention.ms after alterConfigs with no entries (reverted)');
    });
  } finally {
    try {
      await alterBroker([]);
    } catch (e) {
      console.log(`cleanup: alterConfigs on broker 1 with no entries failed: ${e.type || e.name}: ${e.message}`);
    }
  }

  await section('__consumer_offsets', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'one', partition: 0 }], acks: -1 });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId, sessionTimeout: 10000 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message consumed within 25 s')), 25000);
      consumer.run({ eachMessage: async () => { clearTimeout(timer); resolve(); } }).catch(reject);
    });
    await consumer.disconnect(); // commits the consumed offset
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const p0 = offsets[0].partitions.find((p) => p.partition === 0);
    equal(p0 && p0.offset, '1', 'offset committed by the group for partition 0');
    const topics = await admin.listTopics();
    check(topics.includes('__consumer_offsets'), `listTopics includes __consumer_offsets: ${JSON.stringify(topics.filter((t) => t.startsWith('__')))}`);
    const md = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] });
    const parts = md.topics[0].partitions;
    check(parts.length > 0 && parts.every((p) => p.leader === 1),
      `__consumer_offsets partitions led by broker 1: ${JSON.stringify(parts.map((p) => [p.partitionId, p.leader]).slice(0, 5))}`);
  });

  try {
    await admin.deleteTopics({ topics: [topic] });
  } catch (e) {
    console.log(`cleanup: deleteTopics failed: ${e.message}`);
  }
  await admin.disconnect();
  if (failures.length) {
    console.log(`FAIL kafkajs admin extra: ${failures.length} failed check(s), ${passed} passed`);
    for (const f of failures) console.log(`  - ${f}`);
    process.exit(1);
  }
  console.log(`PASS kafkajs admin extra: ${passed} checks`);
  process.exit(0);
})().catch((e) => {
  console.log(`FAIL kafkajs admin extra: ${e.stack || String(e)}`);
  process.exit(1);
});
